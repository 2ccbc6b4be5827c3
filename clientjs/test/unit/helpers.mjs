// Shared by the unit tests: both builds, the vectors file, a fake WebSocket.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const clientRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

const umd = require(join(clientRoot, 'dist', 'sacsock.js'));
const esm = await import(join(clientRoot, 'dist', 'sacsock.mjs'));

/** Every test file runs its cases against both builds: [label, module namespace]. */
export const builds = [
  ['UMD (require)', { SS: umd, encode: umd.encode, decode: umd.decode, VERSION: umd.VERSION }],
  ['ESM (import)', { SS: esm.default, encode: esm.encode, decode: esm.decode, VERSION: esm.VERSION }],
];

export const vectorsPath =
  process.env.SACSOCK_VECTORS || join(clientRoot, '..', 'tests', 'vectors', 'sacsock-vectors.json');
export const vectors = JSON.parse(readFileSync(vectorsPath, 'utf8'));

export const hexToBytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
export const bytesToHex = (bytes) => Buffer.from(bytes).toString('hex');

/** Bytes a frame puts on the wire: UTF-8 of a string, or the binary data itself. */
export function wireBytes(frame) {
  if (typeof frame === 'string') return new Uint8Array(Buffer.from(frame, 'utf8'));
  if (ArrayBuffer.isView(frame)) return new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength);
  return new Uint8Array(frame);
}

/** A logger that records instead of printing. */
export function quietLogger() {
  const log = { warnings: [], errors: [] };
  log.warn = (...args) => log.warnings.push(args.join(' '));
  log.error = (...args) => log.errors.push(args.join(' '));
  return log;
}

/**
 * A fresh fake WebSocket class. Tests drive it: open(), receive(data), drop(code), and
 * inspect `sent`, `url`, `protocols`, `binaryType`. close() closes on the next microtask,
 * like a browser that fires `close` asynchronously.
 */
export function fakeWebSocketClass() {
  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.binaryType = 'blob';
      this.sent = [];
      this.closeCalls = [];
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      FakeWebSocket.instances.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error('FakeWebSocket.send while readyState=' + this.readyState);
      this.sent.push(data);
    }
    close(code, reason) {
      this.closeCalls.push([code, reason]);
      if (this.readyState >= 2) return;
      this.readyState = 2;
      queueMicrotask(() => this._fireClose(code === undefined ? 1005 : code));
    }
    // --- driven by tests ---
    open() {
      this.readyState = 1;
      this.onopen && this.onopen({ type: 'open' });
    }
    receive(data) {
      this.onmessage && this.onmessage({ type: 'message', data });
    }
    drop(code = 1006) {
      this.onerror && this.onerror({ type: 'error' });
      this._fireClose(code);
    }
    _fireClose(code) {
      this.readyState = 3;
      this.onclose && this.onclose({ type: 'close', code, wasClean: code !== 1006 });
    }
  }
  FakeWebSocket.instances = [];
  FakeWebSocket.last = () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  return FakeWebSocket;
}

/** Let queued microtasks (fake close events, promise callbacks) run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
