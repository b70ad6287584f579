/**
 * Owns the bytes of the CurveZMQ handshake (RFC 26, as libzmq's curve_client_tools.hpp and
 * curve_server.cpp lay them out): HELLO, WELCOME, INITIATE and READY, each built and opened
 * here. Offsets are into the command's data (after its name). Every length is checked before a
 * byte is read. Pure functions; no I/O, no state.
 */
import { Buffer } from "node:buffer";
import { encodeCommand } from "../codec.ts";
import { KEY_SIZE, MAC_SIZE, open, randomBytes, seal, sharedKey } from "./box.ts";
import { nonceWithPrefix, readCounter, writeCounter } from "./nonce.ts";

/** HELLO data: version (2), padding (72), C' (32), nonce (8), box of 64 zero bytes (80). */
export const HELLO_DATA_SIZE = 2 + 72 + 32 + 8 + 80;
/** WELCOME data: nonce (16), box of S' + cookie (144). */
export const WELCOME_DATA_SIZE = 16 + 144;
/** Cookie: nonce (16), secretbox of C' + s' (80). */
const COOKIE_SIZE = 16 + 80;
/** INITIATE data: cookie (96), nonce (8), box of C + vouch nonce + vouch + metadata (>= 144). */
export const INITIATE_MIN_DATA_SIZE = COOKIE_SIZE + 8 + MAC_SIZE + 128;
/** READY data: nonce (8), box of metadata (>= 16). */
export const READY_MIN_DATA_SIZE = 8 + MAC_SIZE;

/** Why a handshake command was refused; the mechanism turns it into a protocol error. */
export class CurveHandshakeError extends Error {
  constructor(
    message: string,
    /** True where the cause is cryptographic (a box did not open), false for malformed bytes. */
    readonly cryptographic: boolean,
  ) {
    super(message);
  }
}

// ---- HELLO (client → server) ----

/**
 * The key of HELLO and WELCOME, crypto_box_beforenm(S, c') = beforenm(C', s): computed once per
 * handshake on each side (an X25519 is most of a handshake's cost).
 */
export function helloKey(publicKey: Uint8Array, secretKey: Uint8Array, what: string): Uint8Array {
  const key = sharedKey(publicKey, secretKey);
  if (key === null) throw new CurveHandshakeError(`${what} is not a usable public key`, true);
  return key;
}

export function encodeHello(key: Uint8Array, clientShortPublic: Uint8Array, counter: number): Buffer {
  const nonce = nonceWithPrefix("CurveZMQHELLO---");
  writeCounter(nonce, 16, counter);
  const data = Buffer.alloc(HELLO_DATA_SIZE);
  data[0] = 1; // CurveZMQ 1.0
  data[1] = 0;
  data.set(clientShortPublic, 74);
  data.set(nonce.subarray(16), 106);
  data.set(seal(key, nonce, new Uint8Array(64)), 114);
  return encodeCommand("HELLO", data);
}

/** Opens a HELLO with the server's key; returns the client's short-term key and nonce counter. */
export function openHello(data: Buffer, serverSecret: Uint8Array): { clientShortPublic: Uint8Array; counter: number; key: Uint8Array } {
  if (data.length !== HELLO_DATA_SIZE) throw new CurveHandshakeError(`malformed HELLO: ${data.length + 6} bytes, not 200`, false);
  if (data[0] !== 1 || data[1] !== 0)
    throw new CurveHandshakeError(`HELLO asks for CurveZMQ ${data[0]}.${data[1]}; only 1.0 is spoken`, false);
  const clientShortPublic = Uint8Array.from(data.subarray(74, 106));
  const counter = readCounter(data, 106);
  const key = sharedKey(clientShortPublic, serverSecret);
  const nonce = nonceWithPrefix("CurveZMQHELLO---");
  nonce.set(data.subarray(106, 114), 16);
  const plain = key === null ? null : open(key, nonce, data.subarray(114));
  if (key === null || plain === null)
    throw new CurveHandshakeError("cannot open the client's HELLO: the client has the wrong server key", true);
  return { clientShortPublic, counter, key };
}

// ---- WELCOME (server → client) ----

/** Builds the WELCOME and the cookie it carries, sealed with a per-connection `cookieKey`. */
export function encodeWelcome(
  key: Uint8Array,
  clientShortPublic: Uint8Array,
  serverShortPublic: Uint8Array,
  serverShortSecret: Uint8Array,
  cookieKey: Uint8Array,
): Buffer {
  const cookieNonce = nonceWithPrefix("COOKIE--");
  cookieNonce.set(randomBytes(16), 8);
  const cookiePlain = new Uint8Array(64);
  cookiePlain.set(clientShortPublic, 0);
  cookiePlain.set(serverShortSecret, 32);
  const cookieBox = seal(cookieKey, cookieNonce, cookiePlain);
  const welcomePlain = new Uint8Array(128);
  welcomePlain.set(serverShortPublic, 0);
  welcomePlain.set(cookieNonce.subarray(8), 32);
  welcomePlain.set(cookieBox, 48);
  const welcomeNonce = nonceWithPrefix("WELCOME-");
  welcomeNonce.set(randomBytes(16), 8);
  const data = Buffer.alloc(WELCOME_DATA_SIZE);
  data.set(welcomeNonce.subarray(8), 0);
  data.set(seal(key, welcomeNonce, welcomePlain), 16);
  return encodeCommand("WELCOME", data);
}

/** Opens a WELCOME; returns the server's short-term key and the cookie to echo in INITIATE. */
export function openWelcome(data: Buffer, key: Uint8Array): { serverShortPublic: Uint8Array; cookie: Uint8Array } {
  if (data.length !== WELCOME_DATA_SIZE) throw new CurveHandshakeError(`malformed WELCOME: ${data.length + 8} bytes, not 168`, false);
  const nonce = nonceWithPrefix("WELCOME-");
  nonce.set(data.subarray(0, 16), 8);
  const plain = open(key, nonce, data.subarray(16));
  if (plain === null) throw new CurveHandshakeError("cannot open the server's WELCOME: curveServerKey does not match the server", true);
  return { serverShortPublic: plain.slice(0, 32), cookie: plain.slice(32, 128) };
}

// ---- INITIATE (client → server) ----

export function encodeInitiate(options: {
  cookie: Uint8Array;
  counter: number;
  serverKey: Uint8Array;
  clientPublic: Uint8Array;
  clientSecret: Uint8Array;
  clientShortPublic: Uint8Array;
  /** crypto_box_beforenm(S', c'), the key of INITIATE, READY and every MESSAGE. */
  shortTermKey: Uint8Array;
  serverShortPublic: Uint8Array;
  metadata: Uint8Array;
}): Buffer {
  const vouchNonce = nonceWithPrefix("VOUCH---");
  vouchNonce.set(randomBytes(16), 8);
  const vouchPlain = new Uint8Array(64);
  vouchPlain.set(options.clientShortPublic, 0);
  vouchPlain.set(options.serverKey, 32);
  const vouchKey = sharedKey(options.serverShortPublic, options.clientSecret);
  if (vouchKey === null) throw new CurveHandshakeError("the server's short-term key is not a usable public key", true);
  const vouchBox = seal(vouchKey, vouchNonce, vouchPlain);
  const plain = new Uint8Array(128 + options.metadata.length);
  plain.set(options.clientPublic, 0);
  plain.set(vouchNonce.subarray(8), 32);
  plain.set(vouchBox, 48);
  plain.set(options.metadata, 128);
  const nonce = nonceWithPrefix("CurveZMQINITIATE");
  writeCounter(nonce, 16, options.counter);
  const box = seal(options.shortTermKey, nonce, plain);
  const data = Buffer.allocUnsafe(COOKIE_SIZE + 8 + box.length);
  data.set(options.cookie, 0);
  data.set(nonce.subarray(16), COOKIE_SIZE);
  data.set(box, COOKIE_SIZE + 8);
  return encodeCommand("INITIATE", data);
}

/**
 * Opens an INITIATE: checks the cookie is the one this connection issued, opens the box with the
 * short-term key and verifies the vouch (the client's long-term key vouches for C' and names S).
 */
export function openInitiate(
  data: Buffer,
  expected: {
    cookieKey: Uint8Array;
    clientShortPublic: Uint8Array;
    serverPublic: Uint8Array;
    serverShortSecret: Uint8Array;
    shortTermKey: Uint8Array;
    lastCounter: number;
  },
): { clientPublic: Uint8Array; metadata: Buffer; counter: number } {
  if (data.length < INITIATE_MIN_DATA_SIZE) throw new CurveHandshakeError(`malformed INITIATE: ${data.length + 9} bytes, under 257`, false);
  const cookieNonce = nonceWithPrefix("COOKIE--");
  cookieNonce.set(data.subarray(0, 16), 8);
  const cookie = open(expected.cookieKey, cookieNonce, data.subarray(16, COOKIE_SIZE));
  if (cookie === null) throw new CurveHandshakeError("the INITIATE cookie does not open: not issued on this connection", true);
  if (!equal(cookie.subarray(0, 32), expected.clientShortPublic) || !equal(cookie.subarray(32, 64), expected.serverShortSecret)) {
    throw new CurveHandshakeError("the INITIATE cookie belongs to another handshake", true);
  }
  const counter = readCounter(data, COOKIE_SIZE);
  if (counter <= expected.lastCounter)
    throw new CurveHandshakeError(`INITIATE nonce ${counter} is not above HELLO's ${expected.lastCounter}`, false);
  const nonce = nonceWithPrefix("CurveZMQINITIATE");
  nonce.set(data.subarray(COOKIE_SIZE, COOKIE_SIZE + 8), 16);
  const plain = open(expected.shortTermKey, nonce, data.subarray(COOKIE_SIZE + 8));
  if (plain === null) throw new CurveHandshakeError("the INITIATE box does not open (corrupted or forged)", true);
  const clientPublic = plain.slice(0, KEY_SIZE);
  const vouchNonce = nonceWithPrefix("VOUCH---");
  vouchNonce.set(plain.subarray(32, 48), 8);
  const vouchKey = sharedKey(clientPublic, expected.serverShortSecret);
  const vouch = vouchKey === null ? null : open(vouchKey, vouchNonce, plain.subarray(48, 128));
  if (vouch === null) throw new CurveHandshakeError("the INITIATE vouch does not open: the client's long-term key did not sign it", true);
  // libzmq checks only C'; the server key inside the vouch is checked too, as RFC 26 asks.
  if (!equal(vouch.subarray(0, 32), expected.clientShortPublic) || !equal(vouch.subarray(32, 64), expected.serverPublic)) {
    throw new CurveHandshakeError("the INITIATE vouch names other keys than this handshake's", true);
  }
  return { clientPublic, metadata: Buffer.from(plain.buffer, plain.byteOffset + 128, plain.length - 128), counter };
}

// ---- READY (server → client) ----

export function encodeReady(shortTermKey: Uint8Array, counter: number, metadata: Uint8Array): Buffer {
  const nonce = nonceWithPrefix("CurveZMQREADY---");
  writeCounter(nonce, 16, counter);
  const box = seal(shortTermKey, nonce, metadata);
  const data = Buffer.allocUnsafe(8 + box.length);
  data.set(nonce.subarray(16), 0);
  data.set(box, 8);
  return encodeCommand("READY", data);
}

export function openReady(data: Buffer, shortTermKey: Uint8Array): { metadata: Buffer; counter: number } {
  if (data.length < READY_MIN_DATA_SIZE) throw new CurveHandshakeError(`malformed READY: ${data.length + 6} bytes, under 30`, false);
  const nonce = nonceWithPrefix("CurveZMQREADY---");
  nonce.set(data.subarray(0, 8), 16);
  const plain = open(shortTermKey, nonce, data.subarray(8));
  if (plain === null) throw new CurveHandshakeError("the server's READY box does not open (corrupted or forged)", true);
  return { metadata: Buffer.from(plain.buffer, plain.byteOffset, plain.length), counter: readCounter(data, 0) };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}
