// A ws echo server and a client in one process (ws probes optional native deps in try/catch).
const { WebSocketServer, WebSocket } = require('ws');
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
  const client = new WebSocket(`ws://127.0.0.1:${wss.address().port}`);
  client.on('open', () => client.send('ping over ws'));
  client.on('message', (m) => {
    console.log(`echo: ${m}`);
    client.close();
    wss.close();
  });
});
wss.on('connection', (s) => s.on('message', (m) => s.send(String(m))));
