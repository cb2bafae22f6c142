// axios and fetch against an HTTPS server whose certificate a private CA signed (--ca-certs).
const axios = require('axios');
const url = process.env.URL || 'https://localhost:8443/';
(async () => {
  const a = await axios.get(url, { responseType: 'text' });
  console.log(`axios ${a.status} ${a.data.trim()}`);
  const f = await fetch(url);
  console.log(`fetch ${f.status} ${(await f.text()).trim()}`);
})().catch((e) => {
  console.error(`request failed: ${e.code || ''} ${e.cause ? e.cause.code : e.message}`);
  process.exit(1);
});
