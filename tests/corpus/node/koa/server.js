// A koa 3 server with @koa/router.
const Koa = require('koa');
const Router = require('@koa/router');
const app = new Koa();
const router = new Router();
router.get('/', (ctx) => { ctx.body = { framework: 'koa', ok: true }; });
app.use(router.routes()).use(router.allowedMethods());
const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`koa listening on ${port}`));
