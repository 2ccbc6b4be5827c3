// The browser client (clientjs' ESM build) in Node, behind the load balancer, as the docs
// tell users to write it: rooms joined in onConnect, which runs again after every
// reconnect. Prints one JSON line per event it gets: {"event": ..., "data": ...}.
// Run by test_nginx.py: node [--experimental-websocket] js_member.mjs ws://LB/socket
import SS from '../../clientjs/dist/sacsock.mjs';

const ss = new SS(process.argv[2], {
  WebSocket: globalThis.WebSocket,
  reconnectOpts: { enabled: true, intervalMS: 200, maxIntervalMS: 1000 },
});
const text = (data) => (data instanceof ArrayBuffer ? Buffer.from(data).toString('utf8') : String(data));
const print = (event) => (data) => console.log(JSON.stringify({ event, data: text(data) }));
ss.onConnect(() => {
  ss.emit('join', 'lobby');
  ss.emit('whoami', '');
});
ss.onDisconnect(() => console.log(JSON.stringify({ event: 'disconnected', data: '' })));
for (const event of ['whoami', 'joined', 'news']) ss.on(event, print(event));
process.on('SIGTERM', () => { ss.close(); process.exit(0); });
