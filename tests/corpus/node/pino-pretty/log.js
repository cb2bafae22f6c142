// pino with the pino-pretty transport: it runs in a worker thread (thread-stream).
const pino = require('pino');
const logger = pino({
  transport: {
    target: 'pino-pretty',
    options: { colorize: false, ignore: 'pid,hostname,time', destination: 1 },
  },
});
logger.info({ corpus: true }, 'hello from pino-pretty');
