// A hono app on @hono/node-server (ESM).
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
const app = new Hono();
app.get('/', (c) => c.json({ framework: 'hono', ok: true }));
const port = Number(process.env.PORT || 3000);
serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => console.log(`hono listening on ${port}`));
