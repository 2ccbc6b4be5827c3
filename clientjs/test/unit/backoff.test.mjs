// Reconnect timing: exponential backoff with full jitter, driven by fake timers
// (node:test mock.timers) and a stubbed Math.random.
import { describe, test, mock, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { builds, fakeWebSocketClass, quietLogger } from './helpers.mjs';

beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
afterEach(() => {
  mock.timers.reset();
  mock.restoreAll();
});

for (const [label, { SS }] of builds) {
  describe(`${label}: reconnect backoff`, () => {
    function start(reconnectOpts) {
      const WebSocket = fakeWebSocketClass();
      const ss = new SS('ws://h/socket', { WebSocket, reconnectOpts, logger: quietLogger() });
      return { ss, WebSocket };
    }

    // Advance the clock 1 ms at a time until a new websocket appears; return the delay.
    function waitForAttempt(WebSocket, limit) {
      const before = WebSocket.instances.length;
      mock.timers.tick(0);
      for (let waited = 0; waited <= limit; waited++) {
        if (WebSocket.instances.length > before) return waited;
        mock.timers.tick(1);
      }
      return Infinity;
    }
    const R = 0.9999; // Math.random() stub: close to 1, so the delay is just under the ceiling
    const under = (ceilings) => ceilings.map((c) => Math.floor(R * c));

    test('delays double from intervalMS up to maxIntervalMS (random close to 1)', () => {
      mock.method(Math, 'random', () => R);
      const { ss, WebSocket } = start({ intervalMS: 100, maxIntervalMS: 1000 });
      WebSocket.last().open();
      WebSocket.last().drop();
      const delays = [];
      for (let i = 0; i < 6; i++) {
        delays.push(waitForAttempt(WebSocket, 5000));
        WebSocket.last().drop(); // this attempt fails too
      }
      assert.deepEqual(delays, under([100, 200, 400, 800, 1000, 1000]));
      ss.close();
    });

    test('full jitter: the delay is random() times the ceiling', () => {
      const draws = [0.5, 0.25, 0, 0.5];
      mock.method(Math, 'random', () => draws.shift());
      const { ss, WebSocket } = start({ intervalMS: 1000, maxIntervalMS: 8000 });
      WebSocket.last().drop(); // the very first attempt fails: it is retried as well
      const delays = [];
      for (let i = 0; i < 3; i++) {
        delays.push(waitForAttempt(WebSocket, 10000));
        WebSocket.last().drop();
      }
      assert.deepEqual(delays, [500, 500, 0]); // 0.5*1000, 0.25*2000, 0*4000
      assert.equal(Math.random.mock.callCount(), 4); // one draw per scheduled attempt
      ss.close();
    });

    test('a successful open resets the backoff', () => {
      mock.method(Math, 'random', () => R);
      const { ss, WebSocket } = start({ intervalMS: 100, maxIntervalMS: 10000 });
      WebSocket.last().open();
      WebSocket.last().drop();
      assert.equal(waitForAttempt(WebSocket, 20000), 99);
      WebSocket.last().drop();
      assert.equal(waitForAttempt(WebSocket, 20000), 199);
      WebSocket.last().drop();
      assert.equal(waitForAttempt(WebSocket, 20000), 399);
      WebSocket.last().open();
      WebSocket.last().drop();
      assert.equal(waitForAttempt(WebSocket, 20000), 99);
      ss.close();
    });

    test('the defaults: base 1000 ms, cap 30000 ms', () => {
      mock.method(Math, 'random', () => R);
      const { ss, WebSocket } = start(undefined);
      WebSocket.last().open();
      WebSocket.last().drop();
      const delays = [];
      for (let i = 0; i < 7; i++) {
        delays.push(waitForAttempt(WebSocket, 40000));
        WebSocket.last().drop();
      }
      assert.deepEqual(delays, under([1000, 2000, 4000, 8000, 16000, 30000, 30000]));
      ss.close();
    });

    test('no timer and no attempt when reconnect is disabled', () => {
      const { ss, WebSocket } = start({ enabled: false });
      WebSocket.last().open();
      WebSocket.last().drop();
      assert.equal(waitForAttempt(WebSocket, 100000 / 100), Infinity);
      assert.equal(ss.state, 'closed');
    });

    test('the backoff never overflows after very many failures', () => {
      mock.method(Math, 'random', () => R);
      const { ss, WebSocket } = start({ intervalMS: 1, maxIntervalMS: 50 });
      WebSocket.last().drop();
      for (let i = 0; i < 1100; i++) {
        mock.timers.tick(50);
        WebSocket.last().drop();
      }
      assert.equal(WebSocket.instances.length, 1101);
      assert.equal(waitForAttempt(WebSocket, 100), Math.floor(R * 50));
      ss.close();
    });
  });
}
