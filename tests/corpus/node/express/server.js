// An express 5 server, as its README starts one.
const express = require('express');
const app = express();
app.get('/', (req, res) => res.json({ framework: 'express', ok: true }));
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`express listening on ${port}`));
