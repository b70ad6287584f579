/**
 * Owns CURVE keys as users handle them: 40-character Z85 strings (zeromq.js's form), 32 raw
 * bytes, or 64 hex digits; key pairs; and the public key of a secret key.
 */
import { Buffer } from "node:buffer";
import { generateKeyPair, KEY_SIZE, publicKeyOf } from "./box.ts";
import { z85Decode, z85Encode } from "./z85.ts";

/** A CURVE key as accepted by options: 32 bytes, 40 Z85 characters or 64 hex digits. */
export type CurveKey = string | Uint8Array;

/** A key pair as zeromq.js's curveKeyPair() returns it: both 40-character Z85 strings. */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

/** A fresh key pair (libzmq's zmq_curve_keypair), Z85-encoded. */
export function curveKeyPair(): CurveKeyPair {
  const pair = generateKeyPair();
  return { publicKey: z85Encode(pair.publicKey), secretKey: z85Encode(pair.secretKey) };
}

/** The Z85 public key of a Z85 secret key (libzmq's zmq_curve_public). */
export function curvePublicKey(secretKey: string): string {
  return z85Encode(publicKeyOf(parseCurveKey(secretKey, "secretKey")));
}

/** Decodes a key in any accepted form to 32 bytes; throws a one-line TypeError/RangeError naming `what`. */
export function parseCurveKey(key: CurveKey, what: string): Uint8Array {
  if (key instanceof Uint8Array) {
    if (key.length !== KEY_SIZE) throw new RangeError(`${what} must be 32 bytes; got ${key.length}`);
    return new Uint8Array(key);
  }
  if (typeof key !== "string") throw new TypeError(`${what} must be a 40-character Z85 string or 32 bytes`);
  const text = key.trim();
  if (text.length === 40) {
    try {
      return z85Decode(text);
    } catch (error) {
      throw new RangeError(`${what} is not valid Z85: ${(error as Error).message}`);
    }
  }
  if (text.length === 64 && /^[0-9a-fA-F]{64}$/.test(text)) return Uint8Array.from(Buffer.from(text, "hex"));
  throw new RangeError(`${what} must be a 40-character Z85 string (or 64 hex digits, or 32 bytes); got ${text.length} characters`);
}

/** The Z85 form of a 32-byte key, as logs and discovery show keys. */
export function formatCurveKey(key: Uint8Array): string {
  return z85Encode(key);
}
