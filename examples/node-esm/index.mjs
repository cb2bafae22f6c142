// Demonstrates an ES module entry point importing a CommonJS npm dependency (ms).
import ms from 'ms';

const value = ms('2 days');
console.log(`esm ok: 2 days = ${value} ms`);
