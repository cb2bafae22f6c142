// Demonstrates an app that loads a native addon (.node file), which cannot be embedded in a single executable.
const addon = require('./build/Release/addon.node');
console.log('addon loaded:', typeof addon);
