// prettier 3's API (ESM, import.meta.url, plugins loaded by import()), with top-level await.
import * as prettier from 'prettier';
const out = await prettier.format('const  answer = {value:42,list:[1,2,3]}', { parser: 'babel' });
process.stdout.write(out);
