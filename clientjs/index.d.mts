// Types for sacsock-client, ES module flavour (dist/sacsock.mjs).
//   import SS from 'sacsock-client';
//   import { SS, encode, decode, VERSION } from 'sacsock-client';
// Keep in step with index.d.ts (a unit test compares the two).

/** 'reconnecting' covers the wait between attempts and the attempts themselves. */
export type State = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

export interface ReconnectOpts {
  /** Reconnect after an unexpected close. Default true. */
  enabled?: boolean;
  /** Run the onConnect callback after every reconnect, not only the first connect. Default true. */
  replayOnConnect?: boolean;
  /** Backoff base in ms (> 0): attempt n waits random(0, min(maxIntervalMS, intervalMS * 2^n)). Default 1000. */
  intervalMS?: number;
  /** Backoff cap in ms (>= intervalMS). Default 30000. */
  maxIntervalMS?: number;
}

/** The part of a WebSocket the client uses (browsers, Node >= 22, undici, ws). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: any }) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

export interface Logger {
  warn(...args: any[]): void;
  error(...args: any[]): void;
}

export interface SSOpts {
  reconnectOpts?: ReconnectOpts;
  /** How many emits to keep while not connected (0 = drop them, as upstream). Default 256. */
  queueLimit?: number;
  /** WebSocket implementation; default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Where dropped messages are reported. Default console. */
  logger?: Logger;
}

/** Upstream's names for the option types. */
export type connOpts = ReconnectOpts;
export type ssOpts = SSOpts;

/** What emit() accepts: binary data goes out as a binary frame, strings as they are,
 * numbers/booleans/bigints stringified, undefined as an empty payload, anything else as JSON. */
export type Payload = string | number | boolean | bigint | null | undefined | object | ArrayBuffer | ArrayBufferView;

export interface Decoded {
  event: string;
  /** The type characters between 0x01 and 0x02, e.g. 'S', 'J', 'B'. */
  flags: string;
  /** string (S, text frames), ArrayBuffer (binary frames), or the parsed JSON value (J). */
  data: any;
}

export declare class SS {
  constructor(url: string, opts?: SSOpts);

  static readonly VERSION: string;
  /** Encode a client -> server message: a string is a text frame, an ArrayBuffer a binary frame. */
  static encode(eventName: string, data?: Payload): string | ArrayBuffer;
  /** Decode a server -> client frame; null when malformed. Throws SyntaxError for bad JSON. */
  static decode(frame: string | ArrayBuffer | ArrayBufferView): Decoded | null;
  static readonly SS: typeof SS;
  static readonly default: typeof SS;

  readonly state: State;
  /** Emits waiting for the connection to open. */
  readonly queued: number;

  noop(): void;
  /** Resolves when open (now, or at the next open); rejects once the client is closed for good. */
  ready(): Promise<void>;
  /** Sets THE open callback (replaces the previous one). */
  onConnect(callback: (this: SS, event: any) => void): void;
  /** Sets THE close callback, run once per lost connection (not for failed attempts). */
  onDisconnect(callback: (this: SS, event: any) => void): void;
  /** Sets THE handler of an event (replaces the previous one). */
  on(eventName: string, callback: (this: SS, data: any) => void): void;
  off(eventName: string): void;
  /** true when sent or queued, false when dropped (queue full, or closed). Throws TypeError on a bad event name or data. */
  emit(eventName: string, data?: Payload): boolean;
  /** Closes and stops reconnecting for good; queued emits are discarded. */
  close(code?: number, reason?: string): void;
}

export declare const VERSION: string;
export declare function encode(eventName: string, data?: Payload): string | ArrayBuffer;
export declare function decode(frame: string | ArrayBuffer | ArrayBufferView): Decoded | null;
export default SS;
