// A fastify 5 server with its own logger (pino) on.
const fastify = require('fastify')({ logger: true });
fastify.get('/', async () => ({ framework: 'fastify', ok: true }));
fastify.listen({ port: Number(process.env.PORT || 3000), host: '127.0.0.1' }).catch((err) => {
  console.error(err);
  process.exit(1);
});
