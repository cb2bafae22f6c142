// A piscina worker_threads pool; the worker is a file located by path.
const path = require('path');
const { Piscina } = require('piscina');
const pool = new Piscina({ filename: path.resolve(__dirname, 'worker.js'), maxThreads: 2 });
(async () => {
  const squares = await Promise.all([1, 2, 3, 4].map((n) => pool.run(n)));
  console.log(`squares ${squares.join(',')}`);
  await pool.destroy();
})();
