// The encoder and decoder against every client_to_server and server_to_client vector
// in tests/vectors/sacsock-vectors.json (values are read from the file, not copied).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { builds, vectors, hexToBytes, bytesToHex, wireBytes, fakeWebSocketClass, quietLogger } from './helpers.mjs';

const utf8 = new TextDecoder('utf-8', { fatal: true });

// What the server does with a client message (PROTOCOL.md section 2), to check round trips.
function serverSplit(bytes) {
  const cut = bytes.indexOf(2);
  if (cut <= 0) return null;
  return { event: utf8.decode(bytes.subarray(0, cut)), payload: bytes.subarray(cut + 1) };
}

// The JS value a program would emit to produce a vector: binary frames carry bytes;
// a text payload that is JSON for a non-string (object, null, number) is emitted as that
// value, anything else as the string itself.
function emittedValue(vector) {
  const payload = hexToBytes(vector.expect_payload_hex);
  if (vector.opcode === 'binary') return payload;
  const text = utf8.decode(payload);
  try {
    const value = JSON.parse(text);
    if (typeof value !== 'string') return value;
  } catch {}
  return text;
}

function shared(bytes) {
  const view = new Uint8Array(new SharedArrayBuffer(bytes.length));
  view.set(bytes);
  return view;
}

const c2s = vectors.client_to_server;
const s2c = vectors.server_to_client;

test('the vectors file has the sections this suite needs', () => {
  assert.ok(c2s.length >= 10, 'client_to_server vectors');
  assert.ok(s2c.length >= 6, 'server_to_client vectors');
  assert.ok(c2s.some((v) => v.expect_event === null), 'an invalid client_to_server vector');
});

for (const [label, { SS, encode, decode }] of builds) {
  describe(`${label}: client_to_server vectors`, () => {
    for (const v of c2s.filter((v) => v.expect_event !== null)) {
      test(`encode: ${v.name}`, () => {
        const value = emittedValue(v);
        const frame = encode(v.expect_event, value);
        assert.equal(typeof frame === 'string' ? 'text' : 'binary', v.opcode);
        if (v.opcode === 'binary') assert.ok(frame instanceof ArrayBuffer, 'binary frames are ArrayBuffers');
        assert.equal(bytesToHex(wireBytes(frame)), v.hex);
        const seen = serverSplit(wireBytes(frame));
        assert.equal(seen.event, v.expect_event);
        if (v.expect_event_hex) assert.equal(bytesToHex(Buffer.from(seen.event, 'utf8')), v.expect_event_hex);
        assert.equal(bytesToHex(seen.payload), v.expect_payload_hex);
      });

      test(`emit() sends it: ${v.name}`, () => {
        const WebSocket = fakeWebSocketClass();
        const ss = new SS('ws://h/socket', { WebSocket });
        WebSocket.last().open();
        assert.equal(ss.emit(v.expect_event, emittedValue(v)), true);
        const [frame] = WebSocket.last().sent;
        assert.equal(typeof frame === 'string' ? 'text' : 'binary', v.opcode);
        assert.equal(bytesToHex(wireBytes(frame)), v.hex);
        ss.close();
      });

      test(`same bytes whatever binary view carries the payload: ${v.name}`, () => {
        const bytes = hexToBytes(v.expect_payload_hex);
        const padded = new Uint8Array(bytes.length + 4);
        padded.set(bytes, 2);
        const view = padded.subarray(2, 2 + bytes.length);
        const expected = bytesToHex(wireBytes(encode(v.expect_event, bytes.buffer)));
        for (const data of [
          bytes,
          view,
          new DataView(padded.buffer, 2, bytes.length),
          Buffer.from(bytes),
          shared(bytes),
          shared(bytes).buffer, // a SharedArrayBuffer itself
        ]) {
          assert.equal(bytesToHex(wireBytes(encode(v.expect_event, data))), expected);
        }
        assert.equal(expected, bytesToHex(Buffer.from(v.expect_event, 'utf8')) + '02' + v.expect_payload_hex);
      });
    }

    for (const v of c2s.filter((v) => v.expect_event === null)) {
      test(`never produced by the client: ${v.name}`, () => {
        const bytes = hexToBytes(v.hex);
        assert.equal(serverSplit(bytes), null, 'the server ignores this message');
        const cut = bytes.indexOf(2);
        if (cut === 0) {
          // empty event name: refusing it is the only way not to send it
          const rest = utf8.decode(bytes.subarray(1));
          assert.throws(() => encode('', rest), TypeError);
          const WebSocket = fakeWebSocketClass();
          const ss = new SS('ws://h/socket', { WebSocket });
          WebSocket.last().open();
          assert.throws(() => ss.emit('', rest), /must not be empty/);
          assert.deepEqual(WebSocket.last().sent, []);
          ss.close();
        } else {
          // no separator: every encoding carries one after the event name
          const text = utf8.decode(bytes);
          const frame = encode(text, '');
          assert.notEqual(bytesToHex(wireBytes(frame)), v.hex);
          assert.deepEqual(serverSplit(wireBytes(frame)), { event: text, payload: new Uint8Array(0) });
        }
      });
    }
  });

  describe(`${label}: server_to_client vectors`, () => {
    function frameOf(v) {
      const bytes = hexToBytes(v.hex);
      if (v.opcode === 'binary') return bytes.buffer;
      const text = utf8.decode(bytes); // what a browser hands over for a text frame
      if (v.text !== null && v.text !== undefined) assert.equal(text, v.text);
      return text;
    }
    function expectedData(v) {
      const d = v.emit_data;
      if ('str' in d) return d.str;
      if ('bytes_hex' in d) return d.bytes_hex;
      if ('json' in d) return d.json;
      throw new Error('unknown emit_data kind in vector ' + v.name);
    }
    function normalise(v, data) {
      if ('bytes_hex' in v.emit_data) {
        assert.ok(data instanceof ArrayBuffer, 'B payloads are ArrayBuffers');
        return bytesToHex(new Uint8Array(data));
      }
      if ('str' in v.emit_data) assert.equal(typeof data, 'string');
      return data;
    }

    for (const v of s2c) {
      test(`decode: ${v.name}`, () => {
        const msg = decode(frameOf(v));
        assert.equal(msg.event, v.emit_event);
        assert.deepEqual(normalise(v, msg.data), expectedData(v));
      });

      test(`on() handler receives it: ${v.name}`, () => {
        const WebSocket = fakeWebSocketClass();
        const ss = new SS('ws://h/socket', { WebSocket, logger: quietLogger() });
        const got = [];
        ss.on(v.emit_event, (data) => got.push(data));
        ss.on(v.emit_event + '-other', () => got.push('wrong handler'));
        WebSocket.last().open();
        WebSocket.last().receive(frameOf(v));
        assert.equal(got.length, 1);
        assert.deepEqual(normalise(v, got[0]), expectedData(v));
        ss.close();
      });
    }
  });
}
