const ms = require('ms');
module.exports = (who) => `hello ${who}, an hour is ${ms('1h')} ms`;
