// Demonstrates an Express HTTP server (with npm dependencies) packaged as a Node SEA image; /resolve exercises /etc/hosts.
const express = require('express');
const dns = require('dns');

const app = express();
const port = process.env.PORT || 8080;

app.get('/', (req, res) => {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'n/a';
  res.type('text/plain').send(`hello from binpack node (uid ${uid}, node ${process.version})\n`);
});

app.get('/resolve', (req, res) => {
  dns.lookup('localhost', (err, address, family) => {
    if (err) {
      res.status(500).type('text/plain').send(`lookup failed: ${err.code || err.message}\n`);
      return;
    }
    res.type('text/plain').send(`localhost -> ${address} (IPv${family})\n`);
  });
});

app.listen(port, () => {
  console.log(`listening on :${port}`);
});
