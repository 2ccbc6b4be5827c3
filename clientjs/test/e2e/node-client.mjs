// Run by client.e2e.test.mjs in a child `node` process: the ESM build in Node with Node's
// own WebSocket (global in Node >= 22, behind --experimental-websocket in Node 20).
// Prints one JSON line with what came back.
import SS from '../../dist/sacsock.mjs';

const url = process.argv[2];
const ss = new SS(url, { WebSocket: globalThis.WebSocket, reconnectOpts: { enabled: false } });
const got = {};
const wait = (event) => new Promise((resolve) => ss.on(event, (data) => resolve((got[event] = data))));
const all = Promise.all([wait('welcome'), wait('echo'), wait('echobin'), wait('echojson')]);
ss.emit('echo', 'from node ✓'); // queued until open
ss.emit('echobin', new Uint8Array([0, 2, 255]));
ss.emit('echojson', { node: true });
await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 15000))]);
ss.close();
console.log(
  JSON.stringify({
    welcome: got.welcome,
    echo: got.echo,
    echobin: got.echobin instanceof ArrayBuffer ? Buffer.from(got.echobin).toString('hex') : String(got.echobin),
    echojson: got.echojson,
  })
);
