// The client in headless Chromium against a real `sacsock serve` (test/e2e/app/e2e_app.py).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { e2eDir, startServer, launchBrowser } from './harness.mjs';

const execFileAsync = promisify(execFile);
const appDir = join(e2eDir, 'app');
const WAIT = 15_000; // bound for one event to arrive (generous; typical is milliseconds)
const RESTART_WAIT = 90_000; // bound for a reconnect across a server restart (Ray cold start)

let server;
let browser;
let page;

const serve = (port) => startServer({ appDir, app: 'e2e_app:server', staticDir: 'static', port, logName: 'e2e-server' });

// Run fn(args) in the page.
const inPage = (fn, args) => page.evaluate(fn, args);
const connect = (name, events, opts) =>
  inPage(([n, e, o]) => T.connect(n, e, o), [name, events, opts || { reconnectOpts: { intervalMS: 100, maxIntervalMS: 500 } }]);
const emit = (name, event, data) => inPage(([n, e, d]) => T.clients[n].ss.emit(e, d), [name, event, data]);
const take = (name, event, timeout = WAIT) => inPage(([n, e, t]) => T.take(n, e, t), [name, event, timeout]);
const pending = (name) => inPage((n) => T.pending(n), name);
const stateOf = (name) => inPage((n) => T.clients[n].ss.state, name);
const ready = (name) => inPage((n) => T.clients[n].ss.ready().then(() => T.clients[n].ss.state), name);

const ALL = ['welcome', 'echo', 'echobin', 'echojson', 'joined', 'left', 'roomcast', 'broadcast', 'socketcast'];
const WATCHER = [...ALL, 'gone']; // client a also hears about disconnects

before(async () => {
  server = await serve();
  console.log(`# sacsock serve ready on ${server.url} after ${server.startupMs} ms`);
  browser = await launchBrowser();
  page = await browser.newPage(server.url + '/');
  assert.equal(await inPage(() => typeof SS), 'function', 'the page loaded /sacsock.js');
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    const exit = await server.stop();
    console.log(`# sacsock serve stopped: ${JSON.stringify(exit)}`);
  }
});

describe('against a real server', () => {
  const ids = {};

  test('GET /sacsock.js serves this build', async () => {
    const res = await fetch(server.url + '/sacsock.js');
    const body = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /javascript/);
    const { readFileSync } = await import('node:fs');
    assert.equal(body, readFileSync(join(e2eDir, '..', '..', 'dist', 'sacsock.js'), 'utf8'));
  });

  test('connect: emits before open are queued, onConnect runs, ready() resolves', async () => {
    for (const name of ['a', 'b', 'c']) {
      await connect(name, name === 'a' ? WATCHER : ALL);
      // emitted at once, while still connecting: queued, then sent on open
      assert.equal(await emit(name, 'echo', 'queued-' + name), true);
    }
    for (const name of ['a', 'b', 'c']) {
      assert.equal(await ready(name), 'open');
      const welcome = await take(name, 'welcome');
      assert.equal(welcome.kind, 'string');
      assert.match(welcome.value, /^[A-Za-z0-9+/]{32}$/, 'upstream-style socket id');
      ids[name] = welcome.value;
      assert.deepEqual(await take(name, 'echo'), { event: 'echo', self: true, kind: 'string', value: 'queued-' + name });
      assert.equal(await inPage((n) => T.clients[n].connects, name), 1);
    }
    assert.equal(new Set(Object.values(ids)).size, 3);
  });

  test('echo S: any UTF-8 string comes back as the same string', async () => {
    const text = 'héllo ✓ 😀 \u0001 \u0002 end';
    await emit('a', 'echo', text);
    assert.deepEqual(await take('a', 'echo'), { event: 'echo', self: true, kind: 'string', value: text });
    await emit('a', 'echo', '');
    assert.equal((await take('a', 'echo')).value, '');
  });

  test('echo B: binary data comes back as an ArrayBuffer with the same bytes', async () => {
    const got = await inPage(() => {
      const bytes = new Uint8Array([0, 1, 2, 255, 2, 1, 0]);
      T.clients.a.ss.emit('echobin', bytes.subarray(1, 6)); // a view: only its bytes go
      return T.take('a', 'echobin', 15000);
    });
    assert.deepEqual(got, { event: 'echobin', self: true, kind: 'arraybuffer', hex: '0102ff0201' });
    await inPage(() => T.clients.a.ss.emit('echobin', new ArrayBuffer(0)));
    assert.equal((await take('a', 'echobin')).hex, '');
  });

  test('echo J: objects, null, numbers and booleans round-trip as JSON', async () => {
    const value = { a: [1, 'ü', { b: null }], n: 2.5, t: true };
    await emit('a', 'echojson', value);
    assert.deepEqual(await take('a', 'echojson'), { event: 'echojson', self: true, kind: 'object', value });
    for (const v of [null, 5, false]) {
      await emit('a', 'echojson', v);
      const got = await take('a', 'echojson');
      assert.deepEqual(got.value, v);
    }
  });

  test('rooms: join, roomcast reaches members (sender included), leave stops it', async () => {
    for (const name of ['a', 'b']) {
      await emit(name, 'join', 'r1');
      const joined = await take(name, 'joined');
      assert.deepEqual(joined.value, { room: 'r1', rooms: ['__socket_id:' + ids[name], 'r1'].sort() });
    }
    await emit('a', 'roomcast', { room: 'r1', data: 'to r1' });
    for (const name of ['a', 'b']) {
      assert.deepEqual((await take(name, 'roomcast')).value, { room: 'r1', from: ids.a, data: 'to r1' });
    }

    await emit('b', 'leave', 'r1');
    assert.deepEqual((await take('b', 'left')).value, { room: 'r1', rooms: ['__socket_id:' + ids.b], in_room: false });
    await emit('a', 'roomcast', { room: 'r1', data: 'after leave' });
    assert.equal((await take('a', 'roomcast')).value.data, 'after leave');
    // A later broadcast from the same sender reaches b; the roomcast must not have come first.
    await emit('a', 'broadcast', 'sync');
    for (const name of ['a', 'b', 'c']) assert.equal((await take(name, 'broadcast')).value.data, 'sync');
    assert.deepEqual(await pending('b'), []);
    assert.deepEqual(await pending('c'), [], 'c never joined r1');
  });

  test('broadcast reaches every socket, the sender included', async () => {
    await emit('c', 'broadcast', 'hello all');
    for (const name of ['a', 'b', 'c']) {
      assert.deepEqual((await take(name, 'broadcast')).value, { from: ids.c, data: 'hello all' });
    }
  });

  test('socketcast reaches exactly one socket by id', async () => {
    await emit('a', 'socketcast', { to: ids.b, data: 'psst' });
    assert.deepEqual((await take('b', 'socketcast')).value, { from: ids.a, data: 'psst' });
    await emit('a', 'broadcast', 'sync2');
    for (const name of ['a', 'b', 'c']) assert.equal((await take(name, 'broadcast')).value.data, 'sync2');
    assert.deepEqual(await pending('a'), []);
    assert.deepEqual(await pending('c'), []);
  });

  test('off(): the handler is no longer called, other events still are', async () => {
    await inPage(() => T.clients.b.ss.off('broadcast'));
    const before = await inPage(() => T.clients.b.counts.broadcast);
    await emit('a', 'broadcast', 'unheard by b');
    assert.equal((await take('a', 'broadcast')).value.data, 'unheard by b');
    assert.equal((await take('c', 'broadcast')).value.data, 'unheard by b');
    await emit('b', 'echo', 'still here'); // answered after the broadcast was delivered to b
    assert.equal((await take('b', 'echo')).value, 'still here');
    assert.equal(await inPage(() => T.clients.b.counts.broadcast), before);
  });

  test('a server-side close: onDisconnect runs, the client reconnects with a new id', async () => {
    await emit('c', 'kick', '');
    const welcome = await take('c', 'welcome');
    assert.notEqual(welcome.value, ids.c);
    assert.equal((await take('a', 'gone')).value, ids.c, 'the server ran on_disconnect');
    assert.deepEqual(await inPage(() => T.clients.c.disconnects), [1000]);
    assert.equal(await inPage(() => T.clients.c.connects), 2);
    ids.c = welcome.value;
    await emit('c', 'echo', 'back');
    assert.equal((await take('c', 'echo')).value, 'back');
  });

  test('close(): closing -> closed, onDisconnect once, no reconnect, emits refused', async () => {
    const result = await inPage(async () => {
      const rec = T.clients.c;
      rec.ss.close();
      const during = rec.ss.state;
      const rejected = await rec.ss.ready().then(
        () => false,
        () => true
      );
      await new Promise((r) => setTimeout(r, 1500)); // > maxIntervalMS: a reconnect would have happened
      return {
        during,
        after: rec.ss.state,
        rejected,
        disconnects: rec.disconnects.length,
        connects: rec.connects,
        emitted: rec.ss.emit('echo', 'x'),
      };
    });
    assert.equal(result.during, 'closing');
    assert.equal(result.after, 'closed');
    assert.equal(result.rejected, true);
    assert.equal(result.disconnects, 2); // the kick, and this close
    assert.equal(result.connects, 2);
    assert.equal(result.emitted, false);
    assert.deepEqual(await pending('c'), []);
    assert.equal((await take('a', 'gone')).value, ids.c, 'the server saw the close');
  });

  test('an event name with 0x01/0x02 or an empty one throws in the browser', async () => {
    const errors = await inPage(() =>
      ['', 'a\u0001', 'b\u0002c'].map((name) => {
        try {
          T.clients.a.ss.emit(name, 'x');
          return null;
        } catch (e) {
          return e.name + ': ' + e.message;
        }
      })
    );
    for (const e of errors) assert.match(e, /^TypeError: sacsock: event name/);
  });

  test('the ESM build works in Node with its own WebSocket', async () => {
    const flags = process.allowedNodeEnvironmentFlags.has('--experimental-websocket') && typeof WebSocket !== 'function'
      ? ['--experimental-websocket']
      : [];
    const wsUrl = server.url.replace('http:', 'ws:') + '/socket';
    const { stdout } = await execFileAsync(process.execPath, [...flags, join(e2eDir, 'node-client.mjs'), wsUrl], {
      timeout: 30_000,
    });
    const got = JSON.parse(stdout.trim().split('\n').pop());
    assert.match(got.welcome, /^[A-Za-z0-9+/]{32}$/);
    assert.equal(got.echo, 'from node ✓');
    assert.equal(got.echobin, '0002ff');
    assert.deepEqual(got.echojson, { node: true });
    assert.equal((await take('a', 'gone')).value, got.welcome, 'and it closed');
  });

  test('reconnect after the server stops and starts again on the same port', async () => {
    const port = server.port;
    const exit = await server.stop();
    console.log(`# server stopped for the restart test: ${JSON.stringify(exit)}`);
    await page.waitForFunction(() => T.clients.a.disconnects.length === 1 && T.clients.b.disconnects.length === 1, null, {
      timeout: WAIT,
    });
    assert.deepEqual(await inPage(() => [T.clients.a.disconnects, T.clients.b.disconnects]), [[1001], [1001]]);
    assert.equal(await stateOf('a'), 'reconnecting');
    // emitted while the server is down: queued, sent after the reconnect
    assert.equal(await emit('a', 'echo', 'sent while down'), true);
    assert.equal(await inPage(() => T.clients.a.ss.queued), 1);

    server = await serve(port);
    console.log(`# server restarted on port ${port} after ${server.startupMs} ms`);
    await page.waitForFunction(() => T.clients.a.connects === 2 && T.clients.b.connects === 2, null, {
      timeout: RESTART_WAIT,
    });
    for (const name of ['a', 'b']) {
      assert.equal(await stateOf(name), 'open');
      const welcome = await take(name, 'welcome');
      assert.notEqual(welcome.value, ids[name], 'a new socket on the new server');
    }
    assert.equal((await take('a', 'echo')).value, 'sent while down');
    await emit('b', 'echojson', { again: true });
    assert.deepEqual((await take('b', 'echojson')).value, { again: true });
    assert.deepEqual(browser.errors, []);
  });
});
