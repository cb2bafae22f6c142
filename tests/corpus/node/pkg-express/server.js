// An express 5 server, packed by @yao-pkg/pkg (binpack node --packer pkg).
const express = require('express');
const app = express();
app.get('/', (req, res) => res.json({ framework: "express", packer: "pkg", ok: true }));
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`express listening on ${port}`));
