// A plugin host: each argument names a plugin file, loaded by a specifier known only at run
// time (resolved against the working directory).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

async function main(specs) {
  for (const spec of specs) {
    const plugin = await import(pathToFileURL(resolve(spec)).href);
    console.log(`${spec}: ${plugin.default('hello plugin argv')}`);
  }
}

main(process.argv.slice(2)).catch((e) => { console.error(e); process.exit(1); });
