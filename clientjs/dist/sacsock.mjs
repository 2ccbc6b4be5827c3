/*! sacsock-client 0.1.0 | generated from src/sacsock.mjs by scripts/build.mjs; do not edit */
// sacsock-client: a dependency-free client for Sacrificial-Socket ("sac-sock") servers.
//
// This is the ONE source file. `npm run build` (scripts/build.mjs) turns it into
// dist/sacsock.mjs (ES module) and dist/sacsock.js (UMD: <script> global `SS`,
// CommonJS, AMD) and copies the UMD build to ../sacsock_actors/static/sacsock.js.
// Everything above the "@@exports" line is shared by both builds.
//
// Wire format (PROTOCOL.md sections 2 and 3):
//   client -> server   <event> 0x02 <payload>             (text frame, or binary for bytes)
//   server -> client   <event> 0x01 <flags> 0x02 <payload> (flag S: string, J: JSON; binary frame: bytes)

const VERSION = "0.1.0";
const PROTOCOL = 'sac-sock';
const TYPE_SEP = '\x01';
const EVENT_SEP = '\x02';
const OPEN = 1; // WebSocket.OPEN
const MAX_EXPONENT = 30; // 2 ** 30 * intervalMS is far above any sane cap

const DEFAULT_RECONNECT = Object.freeze({
  enabled: true,
  replayOnConnect: true,
  intervalMS: 1000,
  maxIntervalMS: 30000,
});
const DEFAULT_QUEUE_LIMIT = 256;

let utf8Encoder = null;
let utf8Decoder = null;

function encodeUTF8(text) {
  if (!utf8Encoder) utf8Encoder = new TextEncoder();
  return utf8Encoder.encode(text);
}

function decodeUTF8(bytes) {
  if (!utf8Decoder) utf8Decoder = new TextDecoder('utf-8');
  return utf8Decoder.decode(bytes);
}

function noop() {}

function tag(value) {
  return Object.prototype.toString.call(value);
}

// True for ArrayBuffer, SharedArrayBuffer, typed arrays, DataView and Node Buffers,
// also when they come from another realm (iframe, vm context).
function isBinary(data) {
  if (data === null || typeof data !== 'object') return false;
  if (ArrayBuffer.isView(data)) return true;
  const t = tag(data);
  return t === '[object ArrayBuffer]' || t === '[object SharedArrayBuffer]';
}

function bytesOf(data) {
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

function checkEventName(eventName) {
  if (typeof eventName !== 'string') {
    throw new TypeError(
      'sacsock: event name must be a string, got ' + (eventName === null ? 'null' : typeof eventName)
    );
  }
  if (eventName.length === 0) {
    throw new TypeError('sacsock: event name must not be empty');
  }
  if (eventName.indexOf(TYPE_SEP) !== -1 || eventName.indexOf(EVENT_SEP) !== -1) {
    throw new TypeError(
      'sacsock: event name ' + JSON.stringify(eventName) +
        ' contains \\u0001 or \\u0002; those bytes separate the parts of a sac-sock frame, remove them'
    );
  }
}

/**
 * Encode one client -> server message.
 * Returns a string (send as a text frame) or an ArrayBuffer (send as a binary frame).
 * Throws TypeError for a bad event name or for data that cannot be sent.
 */
function encode(eventName, data) {
  checkEventName(eventName);
  if (isBinary(data)) {
    const name = encodeUTF8(eventName);
    const body = bytesOf(data);
    const out = new Uint8Array(name.length + 1 + body.length);
    out.set(name, 0);
    out[name.length] = 2;
    out.set(body, name.length + 1);
    return out.buffer;
  }
  let payload;
  switch (typeof data) {
    case 'string':
      payload = data;
      break;
    case 'number':
    case 'boolean':
    case 'bigint':
      payload = String(data);
      break;
    case 'undefined':
      payload = '';
      break;
    case 'object': {
      const t = tag(data);
      if (t === '[object Blob]' || t === '[object File]') {
        throw new TypeError(
          'sacsock: cannot send a Blob; read it first (await blob.arrayBuffer()) and emit the ArrayBuffer'
        );
      }
      payload = JSON.stringify(data); // null -> "null", as upstream; cycles throw here
      if (payload === undefined) payload = '';
      break;
    }
    default:
      throw new TypeError(
        'sacsock: cannot send a ' + typeof data + '; emit a string, number, boolean, object or binary data'
      );
  }
  return eventName + EVENT_SEP + payload;
}

// Split a server -> client frame without interpreting the payload.
// Returns null for a frame that has no 0x02 or no event name.
function split(frame) {
  if (typeof frame === 'string') {
    const dataAt = frame.indexOf(EVENT_SEP);
    if (dataAt === -1) return null;
    const flagsAt = frame.indexOf(TYPE_SEP);
    const nameEnd = flagsAt !== -1 && flagsAt < dataAt ? flagsAt : dataAt;
    if (nameEnd === 0) return null;
    return {
      event: frame.slice(0, nameEnd),
      flags: nameEnd === dataAt ? '' : frame.slice(nameEnd + 1, dataAt),
      payload: frame.slice(dataAt + 1),
    };
  }
  if (!isBinary(frame)) return null;
  const bytes = bytesOf(frame);
  const dataAt = bytes.indexOf(2);
  if (dataAt === -1) return null;
  const flagsAt = bytes.indexOf(1);
  const nameEnd = flagsAt !== -1 && flagsAt < dataAt ? flagsAt : dataAt;
  if (nameEnd === 0) return null;
  let flags = '';
  for (let i = nameEnd + 1; i < dataAt; i++) flags += String.fromCharCode(bytes[i]);
  return {
    event: decodeUTF8(bytes.subarray(0, nameEnd)),
    flags: flags,
    payload: bytes.slice(dataAt + 1).buffer, // a fresh ArrayBuffer holding exactly the payload
  };
}

function payloadValue(parts) {
  const payload = parts.payload;
  const text = typeof payload === 'string';
  if (parts.flags.indexOf('J') !== -1) return JSON.parse(text ? payload : decodeUTF8(new Uint8Array(payload)));
  if (!text && parts.flags.indexOf('S') !== -1) return decodeUTF8(new Uint8Array(payload));
  return payload;
}

/**
 * Decode one server -> client frame (a string for a text frame, binary data for a binary frame).
 * Returns {event, flags, data} or null when the frame is malformed (no 0x02, empty event name).
 * data: parsed JSON for flag J, a string for text frames, an ArrayBuffer for binary frames.
 * Throws SyntaxError when a J payload is not valid JSON.
 */
function decode(frame) {
  const parts = split(frame);
  if (!parts) return null;
  return { event: parts.event, flags: parts.flags, data: payloadValue(parts) };
}

function checkNumber(name, value, min) {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new TypeError('sacsock: ' + name + ' must be a number >= ' + min + ', got ' + String(value));
  }
}

const BOUND_METHODS = ['onConnect', 'onDisconnect', 'on', 'off', 'emit', 'close', 'ready'];

/**
 * A Sacrificial-Socket connection. See README.md for the full contract.
 *
 * new SS(url, {
 *   reconnectOpts: {enabled: true, replayOnConnect: true, intervalMS: 1000, maxIntervalMS: 30000},
 *   queueLimit: 256,          // emits kept while not connected (0 = drop them, as upstream)
 *   WebSocket: undefined,     // a WebSocket class; default globalThis.WebSocket
 *   logger: console,          // gets .warn() and .error() for dropped messages
 * })
 */
class SS {
  constructor(url, opts) {
    opts = opts || {};
    const reconnect = Object.assign({}, DEFAULT_RECONNECT);
    if (opts.reconnectOpts && typeof opts.reconnectOpts === 'object') {
      for (const key of Object.keys(opts.reconnectOpts)) {
        if (opts.reconnectOpts[key] !== undefined) reconnect[key] = opts.reconnectOpts[key];
      }
    }
    checkNumber('reconnectOpts.intervalMS', reconnect.intervalMS, 1);
    checkNumber('reconnectOpts.maxIntervalMS', reconnect.maxIntervalMS, reconnect.intervalMS);
    const queueLimit = opts.queueLimit === undefined ? DEFAULT_QUEUE_LIMIT : opts.queueLimit;
    checkNumber('queueLimit', queueLimit, 0);
    const WS = opts.WebSocket || (typeof WebSocket === 'function' ? WebSocket : undefined);
    if (typeof WS !== 'function') {
      throw new TypeError(
        'sacsock: no WebSocket implementation; pass opts.WebSocket (for example the class from ' +
          'the "ws" package) or run where globalThis.WebSocket exists (browsers, Node >= 22)'
      );
    }

    this._url = url;
    this._WS = WS;
    this._reconnect = reconnect;
    this._queueLimit = queueLimit;
    this._log = opts.logger || console;
    this._events = new Map();
    this._connectCb = noop;
    this._disconnectCb = noop;
    this._queue = [];
    this._attempt = 0; // failed attempts since the last open; drives the backoff
    this._timer = null;
    this._ws = null;
    this._connectedOnce = false;
    this._state = 'connecting';
    this._waiters = [];
    this.noop = noop;
    // Upstream's methods were closures, so `el.onclick = ss.close` worked; keep that.
    for (const name of BOUND_METHODS) this[name] = SS.prototype[name].bind(this);
    this._open(true);
  }

  /** 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed' */
  get state() {
    return this._state;
  }

  /** Number of emits waiting for the connection to open. */
  get queued() {
    return this._queue.length;
  }

  /** Resolves when the connection is open (now, or at the next open); rejects once closed for good. */
  ready() {
    if (this._state === 'open') return Promise.resolve();
    if (this._state === 'closing' || this._state === 'closed') {
      return Promise.reject(new Error('sacsock: the connection is closed'));
    }
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  /** Set THE function run when the connection opens (replaces the previous one, as upstream). */
  onConnect(callback) {
    this._connectCb = checkCallback(callback);
  }

  /** Set THE function run when an open connection closes (once per lost connection). */
  onDisconnect(callback) {
    this._disconnectCb = checkCallback(callback);
  }

  /** Set THE handler for an event from the server (replaces the previous one, as upstream). */
  on(eventName, callback) {
    checkEventName(eventName);
    this._events.set(eventName, checkCallback(callback));
  }

  /** Remove the handler of an event; later messages for it are ignored. */
  off(eventName) {
    this._events.delete(eventName);
  }

  /**
   * Send an event to the server. Returns true when sent or queued, false when dropped
   * (queue full, or after close()). Throws TypeError for a bad event name or unsendable data.
   */
  emit(eventName, data) {
    const frame = encode(eventName, data);
    const ws = this._ws;
    if (this._state === 'open' && ws && ws.readyState === OPEN) {
      ws.send(frame);
      return true;
    }
    if (this._state === 'closing' || this._state === 'closed') {
      this._log.error('sacsock: emit("' + eventName + '") dropped: the connection is closed');
      return false;
    }
    if (this._queue.length >= this._queueLimit) {
      this._log.warn(
        'sacsock: emit("' + eventName + '") dropped: not connected and the queue is full (queueLimit ' +
          this._queueLimit + ')'
      );
      return false;
    }
    this._queue.push(frame);
    return true;
  }

  /** Close the connection and stop reconnecting for good. Queued emits are discarded. */
  close(code, reason) {
    if (this._state === 'closing' || this._state === 'closed') return;
    this._reconnect.enabled = false; // as upstream
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    this._queue.length = 0;
    const ws = this._ws;
    if (ws) {
      this._state = 'closing';
      if (code === undefined) ws.close();
      else ws.close(code, reason);
    } else {
      this._finish(); // between reconnect attempts: nothing to wait for
    }
  }

  _open(first) {
    let ws;
    try {
      ws = new this._WS(this._url, PROTOCOL);
    } catch (err) {
      if (first) throw err; // a bad URL fails the constructor, as upstream
      this._log.error('sacsock: reconnect attempt failed', err);
      this._scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    let opened = false;
    ws.onopen = (event) => {
      if (this._ws !== ws) return;
      opened = true;
      this._opened(event);
    };
    ws.onmessage = (event) => {
      if (this._ws === ws) this._message(event.data);
    };
    ws.onclose = (event) => {
      if (this._ws === ws) this._closed(event, opened);
    };
    ws.onerror = noop; // a close event always follows
  }

  _opened(event) {
    const first = !this._connectedOnce;
    this._connectedOnce = true;
    this._attempt = 0;
    this._state = 'open';
    const waiters = this._waiters.splice(0);
    for (const w of waiters) w.resolve();
    try {
      if (first || this._reconnect.replayOnConnect) this._connectCb.call(this, event);
    } finally {
      // After onConnect, so that what it sends (join a room, authenticate) goes first.
      const queue = this._queue.splice(0);
      for (const frame of queue) this._ws.send(frame);
    }
  }

  _message(raw) {
    const parts = split(raw);
    if (!parts) {
      this._log.warn('sacsock: ignored a malformed frame from the server');
      return;
    }
    const callback = this._events.get(parts.event);
    if (!callback) return;
    let data;
    try {
      data = payloadValue(parts);
    } catch (err) {
      this._log.error('sacsock: ignored event "' + parts.event + '": its JSON payload does not parse', err);
      return;
    }
    callback.call(this, data);
  }

  _closed(event, opened) {
    this._ws = null;
    if (this._state === 'closing' || !this._reconnect.enabled) {
      this._finish();
    } else {
      this._state = 'reconnecting';
      this._scheduleReconnect();
    }
    if (opened) this._disconnectCb.call(this, event);
  }

  _finish() {
    this._state = 'closed';
    if (this._queue.length) {
      this._log.warn('sacsock: ' + this._queue.length + ' queued emit(s) discarded: the connection is closed');
      this._queue.length = 0;
    }
    const waiters = this._waiters.splice(0);
    for (const w of waiters) w.reject(new Error('sacsock: the connection is closed'));
  }

  // Exponential backoff with full jitter: wait uniform(0, min(max, interval * 2^attempt)).
  _scheduleReconnect() {
    const r = this._reconnect;
    const ceiling = Math.min(r.maxIntervalMS, r.intervalMS * Math.pow(2, Math.min(this._attempt, MAX_EXPONENT)));
    const delay = Math.floor(Math.random() * ceiling);
    this._attempt++;
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this._state === 'reconnecting') this._open(false);
    }, delay);
  }
}

function checkCallback(callback) {
  if (typeof callback !== 'function') {
    throw new TypeError('sacsock: callback must be a function, got ' + typeof callback);
  }
  return callback;
}

SS.VERSION = VERSION;
SS.encode = encode;
SS.decode = decode;
SS.SS = SS;
SS.default = SS;

// @@exports (the UMD build replaces everything from this line on)
export { SS, encode, decode, VERSION };
export default SS;
