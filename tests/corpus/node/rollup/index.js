// Bundles two in-memory modules with rollup (its parser is a native addon) and prints the result.
const { rollup } = require('rollup');
const sources = {
  entry: "import { answer } from 'dep'; console.log(answer);",
  dep: 'export const answer = 42; export const unused = 1;',
};
const virtual = { name: 'virtual', resolveId: (id) => id, load: (id) => sources[id] };
rollup({ input: 'entry', plugins: [virtual] })
  .then((b) => b.generate({ format: 'es' }))
  .then((o) => console.log(`rollup: ${o.output[0].code.replace(/\s+/g, ' ').trim()}`));
