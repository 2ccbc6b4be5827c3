// Behaviour of the SS class against a fake WebSocket: connect, callbacks, on/off, emit,
// queueing, ready()/state, close(), bad input. Runs against both builds.
import { describe, test, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { builds, fakeWebSocketClass, quietLogger, settle, bytesToHex, wireBytes } from './helpers.mjs';

afterEach(() => mock.restoreAll());

for (const [label, { SS, encode }] of builds) {
  function connect(opts = {}) {
    const WebSocket = fakeWebSocketClass();
    const logger = quietLogger();
    const ss = new SS('ws://example.test/socket', { WebSocket, logger, ...opts });
    return { ss, WebSocket, logger, ws: () => WebSocket.last() };
  }

  describe(`${label}: connecting`, () => {
    test('opens one websocket with the sac-sock sub-protocol and arraybuffer binaryType', () => {
      const { ss, WebSocket } = connect();
      assert.equal(WebSocket.instances.length, 1);
      const ws = WebSocket.last();
      assert.equal(ws.url, 'ws://example.test/socket');
      assert.equal(ws.protocols, 'sac-sock');
      assert.equal(ws.binaryType, 'arraybuffer');
      ss.close();
    });

    test('state goes connecting -> open, ready() resolves, onConnect runs with the open event', async () => {
      const { ss, ws } = connect();
      assert.equal(ss.state, 'connecting');
      const seen = [];
      ss.onConnect(function (event) {
        seen.push([this, event.type]);
      });
      let ready = false;
      ss.ready().then(() => (ready = true));
      await settle();
      assert.equal(ready, false);
      ws().open();
      await settle();
      assert.equal(ss.state, 'open');
      assert.equal(ready, true);
      assert.deepEqual(seen, [[ss, 'open']]);
      await ss.ready(); // already open: resolves at once
      ss.close();
    });

    test('uses globalThis.WebSocket when opts.WebSocket is not given', () => {
      const WebSocket = fakeWebSocketClass();
      const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
      globalThis.WebSocket = WebSocket;
      try {
        const ss = new SS('ws://g/socket', { logger: quietLogger() });
        assert.equal(WebSocket.instances.length, 1);
        ss.close();
      } finally {
        if (saved) Object.defineProperty(globalThis, 'WebSocket', saved);
        else delete globalThis.WebSocket;
      }
    });

    test('without any WebSocket implementation the constructor says what to do', () => {
      const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
      delete globalThis.WebSocket;
      try {
        assert.throws(() => new SS('ws://g/socket'), /opts\.WebSocket/);
      } finally {
        if (saved) Object.defineProperty(globalThis, 'WebSocket', saved);
      }
    });

    test('a WebSocket constructor error (bad URL) is thrown by new SS, as upstream', () => {
      class Throwing {
        constructor() {
          throw new SyntaxError('bad url');
        }
      }
      assert.throws(() => new SS('nope', { WebSocket: Throwing }), SyntaxError);
    });

    test('bad options are refused', () => {
      const WebSocket = fakeWebSocketClass();
      assert.throws(() => new SS('ws://h', { WebSocket, reconnectOpts: { intervalMS: 0 } }), /intervalMS/);
      assert.throws(
        () => new SS('ws://h', { WebSocket, reconnectOpts: { intervalMS: 500, maxIntervalMS: 100 } }),
        /maxIntervalMS/
      );
      assert.throws(() => new SS('ws://h', { WebSocket, queueLimit: -1 }), /queueLimit/);
      assert.equal(WebSocket.instances.length, 0);
    });

    test('methods are bound to the instance, as upstream closures were', () => {
      const { ss, ws } = connect();
      const { emit, on } = ss;
      const got = [];
      on('x', (d) => got.push(d));
      ws().open();
      emit('y', 'z');
      ws().receive('x\x01S\x02hi');
      assert.deepEqual(ws().sent, ['y\x02z']);
      assert.deepEqual(got, ['hi']);
      ss.close();
    });
  });

  describe(`${label}: receiving`, () => {
    test('on() replaces the previous handler; handlers get this = the SS instance', () => {
      const { ss, ws } = connect();
      const got = [];
      ss.on('ev', () => got.push('first'));
      ss.on('ev', function (d) {
        got.push([this === ss, d]);
      });
      ws().open();
      ws().receive('ev\x01S\x02payload');
      assert.deepEqual(got, [[true, 'payload']]);
      ss.close();
    });

    test('off() stops delivery of that event only', () => {
      const { ss, ws } = connect();
      const got = [];
      ss.on('a', (d) => got.push('a:' + d));
      ss.on('b', (d) => got.push('b:' + d));
      ws().open();
      ws().receive('a\x01S\x021');
      ss.off('a');
      ss.off('never-registered'); // no error
      ws().receive('a\x01S\x022');
      ws().receive('b\x01S\x023');
      assert.deepEqual(got, ['a:1', 'b:3']);
      ss.close();
    });

    test('events named like Object.prototype members are not dispatched unless registered', () => {
      const { ss, ws, logger } = connect();
      ws().open();
      ws().receive('toString\x01S\x02x');
      ws().receive('__proto__\x01J\x02{}');
      assert.deepEqual(logger.errors, []);
      ss.close();
    });

    test('any UTF-8 in text and binary frames: event names and payloads decode correctly', () => {
      const { ss, ws } = connect();
      const got = [];
      const name = 'héllo-✓-😀';
      ss.on(name, (d) => got.push(d));
      ws().open();
      ws().receive(name + '\x01S\x02wörld 😀');
      const enc = new TextEncoder();
      const head = enc.encode(name);
      const bin = new Uint8Array([...head, 1, 0x42, 2, 0xff, 0x00]);
      ws().receive(bin.buffer);
      const json = new Uint8Array([...head, 1, 0x4a, 2, ...enc.encode('{"k":"ü😀"}')]);
      ws().receive(json.buffer);
      const str = new Uint8Array([...head, 1, 0x53, 2, ...enc.encode('ß😀')]);
      ws().receive(str.buffer);
      assert.equal(got[0], 'wörld 😀');
      assert.equal(bytesToHex(new Uint8Array(got[1])), 'ff00');
      assert.deepEqual(got[2], { k: 'ü😀' });
      assert.equal(got[3], 'ß😀');
      ss.close();
    });

    test('payloads may hold 0x01 and 0x02; a frame without 0x01 is still accepted', () => {
      const { ss, ws } = connect();
      const got = [];
      ss.on('e', (d) => got.push(d));
      ws().open();
      ws().receive('e\x01S\x02a\x01b\x02c');
      ws().receive('e\x02plain');
      ws().receive(new Uint8Array([0x65, 1, 0x42, 2, 1, 2, 3]).buffer);
      assert.equal(got[0], 'a\x01b\x02c');
      assert.equal(got[1], 'plain');
      assert.equal(bytesToHex(new Uint8Array(got[2])), '010203');
      ss.close();
    });

    test('malformed frames and bad JSON are logged and skipped, later frames still arrive', () => {
      const { ss, ws, logger } = connect();
      const got = [];
      ss.on('e', (d) => got.push(d));
      ws().open();
      ws().receive('no separator at all');
      ws().receive('\x01S\x02empty name');
      ws().receive(new Uint8Array([1, 0x42, 2, 9]).buffer);
      ws().receive('e\x01J\x02{not json');
      ws().receive('e\x01J\x02[1,2]');
      assert.deepEqual(got, [[1, 2]]);
      assert.equal(logger.warnings.length, 3);
      assert.equal(logger.errors.length, 1);
      assert.match(logger.errors[0], /JSON/);
      ss.close();
    });
  });

  describe(`${label}: emitting`, () => {
    test('strings, objects, null, numbers, booleans, bigint, undefined', () => {
      const { ss, ws } = connect();
      ws().open();
      ss.emit('s', 'text');
      ss.emit('o', { a: [1, 'x'] });
      ss.emit('z', null);
      ss.emit('n', 5);
      ss.emit('f', 1.5);
      ss.emit('b', false);
      ss.emit('g', 10n);
      ss.emit('u');
      assert.deepEqual(ws().sent, [
        's\x02text',
        'o\x02{"a":[1,"x"]}',
        'z\x02null',
        'n\x025',
        'f\x021.5',
        'b\x02false',
        'g\x0210',
        'u\x02',
      ]);
      ss.close();
    });

    test('binary data goes out as one ArrayBuffer: name, 0x02, exactly the viewed bytes', () => {
      const { ss, ws } = connect();
      ws().open();
      const big = new Uint8Array([9, 9, 1, 2, 3, 9]);
      ss.emit('bin', big.subarray(2, 5));
      ss.emit('bin', new Uint16Array([0x0201]));
      ss.emit('ü', new ArrayBuffer(0));
      const [a, b, c] = ws().sent;
      for (const f of [a, b, c]) assert.ok(f instanceof ArrayBuffer);
      assert.equal(bytesToHex(wireBytes(a)), bytesToHex(Buffer.from('bin\x02\x01\x02\x03', 'latin1')));
      assert.equal(bytesToHex(new Uint8Array(b)).slice(-4), '0102'); // little-endian host bytes
      assert.equal(bytesToHex(wireBytes(c)), 'c3bc02');
      ss.close();
    });

    test('bad event names throw a clear TypeError and send nothing', () => {
      const { ss, ws } = connect();
      ws().open();
      assert.throws(() => ss.emit('', 'x'), { name: 'TypeError', message: /must not be empty/ });
      assert.throws(() => ss.emit('a\x01b', 'x'), { name: 'TypeError', message: /\\u0001 or \\u0002/ });
      assert.throws(() => ss.emit('a\x02b', 'x'), { name: 'TypeError', message: /\\u0001 or \\u0002/ });
      assert.throws(() => ss.emit(42, 'x'), { name: 'TypeError', message: /must be a string, got number/ });
      assert.throws(() => ss.emit(null, 'x'), { name: 'TypeError', message: /got null/ });
      assert.throws(() => ss.on('', () => {}), TypeError);
      assert.throws(() => ss.on('x\x02', () => {}), TypeError);
      assert.throws(() => ss.on('x', 'not a function'), TypeError);
      assert.throws(() => encode('', 'x'), TypeError);
      assert.deepEqual(ws().sent, []);
      ss.close();
    });

    test('unsendable data throws: functions, symbols, Blobs, cycles', () => {
      const { ss, ws } = connect();
      ws().open();
      assert.throws(() => ss.emit('x', () => 1), /cannot send a function/);
      assert.throws(() => ss.emit('x', Symbol('s')), /cannot send a symbol/);
      assert.throws(() => ss.emit('x', new Blob(['a'])), /Blob/);
      const cyclic = {};
      cyclic.self = cyclic;
      assert.throws(() => ss.emit('x', cyclic), TypeError);
      assert.deepEqual(ws().sent, []);
      ss.close();
    });
  });

  describe(`${label}: queueing while not connected`, () => {
    test('emits before open are queued and sent on open, after onConnect runs', () => {
      const { ss, ws } = connect();
      assert.equal(ss.emit('a', '1'), true);
      assert.equal(ss.emit('b', { x: 2 }), true);
      assert.equal(ss.queued, 2);
      ss.onConnect(() => ss.emit('hello', 'first'));
      ws().open();
      assert.deepEqual(ws().sent, ['hello\x02first', 'a\x021', 'b\x02{"x":2}']);
      assert.equal(ss.queued, 0);
      ss.close();
    });

    test('the queue snapshots data at emit time', () => {
      const { ss, ws } = connect();
      const obj = { v: 1 };
      const bytes = new Uint8Array([1]);
      ss.emit('o', obj);
      ss.emit('b', bytes);
      obj.v = 2;
      bytes[0] = 2;
      ws().open();
      assert.equal(ws().sent[0], 'o\x02{"v":1}');
      assert.equal(bytesToHex(new Uint8Array(ws().sent[1])), '620201');
      ss.close();
    });

    test('the queue is bounded: over queueLimit, emit returns false and logs', () => {
      const { ss, ws, logger } = connect({ queueLimit: 2 });
      assert.equal(ss.emit('e', '1'), true);
      assert.equal(ss.emit('e', '2'), true);
      assert.equal(ss.emit('e', '3'), false);
      assert.match(logger.warnings[0], /queue is full \(queueLimit 2\)/);
      ws().open();
      assert.deepEqual(ws().sent, ['e\x021', 'e\x022']);
      ss.close();
    });

    test('queueLimit 0 drops emits made before open (upstream behaviour)', () => {
      const { ss, ws, logger } = connect({ queueLimit: 0 });
      assert.equal(ss.emit('e', '1'), false);
      assert.equal(logger.warnings.length, 1);
      ws().open();
      assert.deepEqual(ws().sent, []);
      ss.close();
    });

    test('emits while reconnecting are queued and sent on the new connection', async () => {
      mock.method(Math, 'random', () => 0);
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const { ss, ws, WebSocket } = connect();
        ws().open();
        ss.emit('before', '1');
        ws().drop();
        assert.equal(ss.state, 'reconnecting');
        ss.emit('during', '2');
        mock.timers.tick(0);
        assert.equal(WebSocket.instances.length, 2);
        ss.emit('during', '3');
        ws().open();
        assert.deepEqual(WebSocket.instances[0].sent, ['before\x021']);
        assert.deepEqual(ws().sent, ['during\x022', 'during\x023']);
        ss.close();
      } finally {
        mock.timers.reset();
      }
    });

    test('an emit while the socket is closing (close event not yet seen) is queued, not lost', () => {
      const { ss, ws } = connect();
      ws().open();
      ws().readyState = 2; // the server started the closing handshake
      assert.equal(ss.emit('e', 'x'), true);
      assert.equal(ss.queued, 1);
      ss.close();
    });
  });

  describe(`${label}: disconnects and close()`, () => {
    test('onDisconnect runs once per lost connection, not for failed reconnect attempts', () => {
      mock.method(Math, 'random', () => 0);
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const { ss, ws, WebSocket } = connect();
        const calls = [];
        ss.onDisconnect(function (event) {
          calls.push([this === ss, event.code, ss.state]);
        });
        ws().drop(); // first attempt fails before open: not a disconnect
        assert.deepEqual(calls, []);
        mock.timers.tick(0);
        ws().open();
        ws().drop(1001);
        assert.deepEqual(calls, [[true, 1001, 'reconnecting']]);
        mock.timers.tick(0);
        ws().drop(); // retry fails
        mock.timers.tick(0);
        ws().drop(); // and again
        assert.equal(calls.length, 1);
        assert.equal(WebSocket.instances.length, 4);
        ss.close();
      } finally {
        mock.timers.reset();
      }
    });

    test('onConnect runs again after a reconnect; not with replayOnConnect: false', () => {
      mock.method(Math, 'random', () => 0);
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        for (const replayOnConnect of [true, false]) {
          const { ss, ws } = connect({ reconnectOpts: { replayOnConnect } });
          let connects = 0;
          ss.onConnect(() => connects++);
          ws().open();
          ws().drop();
          mock.timers.tick(0);
          ws().open();
          assert.equal(connects, replayOnConnect ? 2 : 1, `replayOnConnect=${replayOnConnect}`);
          assert.equal(ss.state, 'open');
          ss.close();
        }
      } finally {
        mock.timers.reset();
      }
    });

    test('close() on an open socket: closing -> closed, onDisconnect runs, no reconnect', async () => {
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const { ss, ws, WebSocket } = connect();
        let disconnects = 0;
        ss.onDisconnect(() => disconnects++);
        ws().open();
        ss.close();
        assert.equal(ss.state, 'closing');
        assert.deepEqual(ws().closeCalls, [[undefined, undefined]]);
        await settle();
        assert.equal(ss.state, 'closed');
        assert.equal(disconnects, 1);
        mock.timers.tick(10 * 60 * 1000);
        assert.equal(WebSocket.instances.length, 1);
        assert.equal(ss.emit('late', 'x'), false);
        await assert.rejects(ss.ready(), /closed/);
        ss.close(); // idempotent
      } finally {
        mock.timers.reset();
      }
    });

    test('close(code, reason) is passed to the websocket', async () => {
      const { ss, ws } = connect();
      ws().open();
      ss.close(4000, 'bye');
      assert.deepEqual(ws().closeCalls, [[4000, 'bye']]);
      await settle();
    });

    test('close() while waiting to reconnect cancels the attempt for good', () => {
      mock.method(Math, 'random', () => 0.5);
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const { ss, ws, WebSocket } = connect();
        ws().open();
        ws().drop();
        assert.equal(ss.state, 'reconnecting');
        ss.close();
        assert.equal(ss.state, 'closed');
        mock.timers.tick(10 * 60 * 1000);
        assert.equal(WebSocket.instances.length, 1);
      } finally {
        mock.timers.reset();
      }
    });

    test('close() while connecting: no onConnect, queued emits discarded, ready() rejects', async () => {
      const { ss, ws, logger } = connect();
      let connects = 0;
      ss.onConnect(() => connects++);
      const ready = ss.ready();
      ss.emit('e', 'x');
      ss.close();
      await assert.rejects(ready, /closed/);
      await settle();
      assert.equal(ss.state, 'closed');
      assert.equal(connects, 0);
      assert.deepEqual(ws().sent, []);
      assert.deepEqual(logger.errors, []);
    });

    test('close() from inside onDisconnect stops the reconnect that was scheduled', () => {
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const { ss, ws, WebSocket } = connect();
        ss.onDisconnect(() => ss.close());
        ws().open();
        ws().drop();
        assert.equal(ss.state, 'closed');
        mock.timers.tick(10 * 60 * 1000);
        assert.equal(WebSocket.instances.length, 1);
      } finally {
        mock.timers.reset();
      }
    });

    test('reconnect disabled: a lost connection ends in closed, queued emits are discarded', async () => {
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const { ss, ws, WebSocket, logger } = connect({ reconnectOpts: { enabled: false } });
        let disconnects = 0;
        ss.onDisconnect(() => disconnects++);
        ws().open();
        ws().readyState = 2;
        ss.emit('e', 'x'); // queued while closing
        ws().drop();
        assert.equal(ss.state, 'closed');
        assert.equal(disconnects, 1);
        assert.match(logger.warnings[0], /1 queued emit\(s\) discarded/);
        mock.timers.tick(10 * 60 * 1000);
        assert.equal(WebSocket.instances.length, 1);
        await assert.rejects(ss.ready());
      } finally {
        mock.timers.reset();
      }
    });

    test('events from a replaced websocket are ignored', () => {
      mock.method(Math, 'random', () => 0);
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const { ss, ws, WebSocket } = connect();
        const got = [];
        ss.on('e', (d) => got.push(d));
        let connects = 0;
        ss.onConnect(() => connects++);
        ws().open();
        const old = ws();
        old.drop();
        mock.timers.tick(0);
        ws().open();
        old.receive('e\x01S\x02stale');
        old.onopen({ type: 'open' });
        old.onclose({ type: 'close', code: 1000 });
        assert.deepEqual(got, []);
        assert.equal(connects, 2);
        assert.equal(ss.state, 'open');
        assert.equal(WebSocket.instances.length, 2);
        ss.close();
      } finally {
        mock.timers.reset();
      }
    });
  });
}
