// A plugin loader: the module is found at run time by a computed path (import(url)).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
const here = dirname(fileURLToPath(import.meta.url));
const names = (process.env.PLUGINS || 'constant,pascal').split(',');
for (const name of names) {
  const plugin = await import(pathToFileURL(join(here, 'plugins', `${name}.js`)).href);
  console.log(`${name}: ${plugin.default('hello corpus plugins')}`);
}
