const ms = require('ms');
process.send(`${process.argv[2]} = ${ms(process.argv[2])} ms`);
