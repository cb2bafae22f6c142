// A yargs 18 (ESM-only, createRequire(import.meta.url) inside) command line.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
const argv = yargs(hideBin(process.argv))
  .option('name', { type: 'string', default: 'world' })
  .option('times', { type: 'number', default: 1 })
  .strict()
  .parse();
for (let i = 0; i < argv.times; i++) console.log(`hello ${argv.name}`);
