// Demonstrates a require() with a computed (non-literal) module name that a bundler cannot resolve statically.
const name = process.env.PLUGIN || 'left-pad-x';
const plugin = require(name);
console.log('loaded plugin', name, typeof plugin);
