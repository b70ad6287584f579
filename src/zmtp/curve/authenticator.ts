/**
 * Owns who a CURVE server lets in: the authenticator hook's contract (ZAP, RFC 27, reduced to a
 * function call) and the built-in allow-list of client public keys.
 */
import type { Buffer } from "node:buffer";
import { type CurveKey, formatCurveKey, parseCurveKey } from "./keys.ts";

/** What a server knows about a client once its vouch has been verified. */
export interface CurveAuthRequest {
  /** The client's long-term public key, Z85 (40 characters). */
  publicKey: string;
  /** The same key as 32 bytes. */
  publicKeyBytes: Uint8Array;
  /** The client's transport address, e.g. "127.0.0.1:51234". */
  address: string;
  /** The routing id the client announced (empty when none). */
  routingId: Buffer;
}

/**
 * The authenticator's answer: true/false, or an object. A denied client gets the ZMTP ERROR
 * libzmq sends ("400"); `reason` goes to the server's log, not to the client.
 */
export type CurveAuthResult = boolean | { allow: true; userId?: string } | { allow: false; reason?: string };

/** Called once per handshake, after the vouch is verified. Must answer synchronously. */
export type CurveAuthenticator = (request: CurveAuthRequest) => CurveAuthResult;

/** An authenticator that admits exactly the listed public keys (Z85, hex or 32 bytes). */
export function curveAllowList(keys: Iterable<CurveKey>): CurveAuthenticator {
  const allowed = new Set<string>();
  for (const key of keys) allowed.add(formatCurveKey(parseCurveKey(key, "allowed public key")));
  return ({ publicKey }) =>
    allowed.has(publicKey)
      ? { allow: true, userId: publicKey }
      : { allow: false, reason: `public key ${publicKey} is not in the allow-list` };
}
