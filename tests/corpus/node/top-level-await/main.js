// Top-level await in an ESM entry.
import pMap from 'p-map';
import { setTimeout as sleep } from 'node:timers/promises';
const doubled = await pMap([1, 2, 3], async (x) => { await sleep(5); return x * 2; }, { concurrency: 2 });
console.log(`awaited ${doubled.join(',')}`);
