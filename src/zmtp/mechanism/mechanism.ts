/**
 * Owns the mechanism contract (RFC 23 "Mechanisms"): a mechanism runs the handshake that follows
 * the greeting. NULL (null.ts) is the only one today; PLAIN or CURVE plug in beside it without
 * touching the codec or the connection.
 */
import type { Buffer } from "node:buffer";
import type { Command } from "../codec.ts";

/** What one side of a handshake does, for one connection. */
export interface MechanismSession {
  /** Command bodies to send once the peer's greeting has been read. */
  start(): Buffer[];
  /**
   * Handles one command received during the handshake. Returns the commands to send in answer
   * and, once the handshake is complete, the peer's metadata (lower-cased property names).
   * Throws ZmtpProtocolError when the peer breaks the mechanism's rules.
   */
  onCommand(command: Command): { send: Buffer[]; peerMetadata?: Map<string, Buffer> };
}

/** Creates a session per connection; `metadata` is what we announce (Socket-Type, Identity). */
export interface Mechanism {
  /** Name as it appears in the greeting, e.g. "NULL". */
  readonly name: string;
  /** The greeting's as-server flag for this side. */
  readonly asServer: boolean;
  createSession(metadata: Record<string, Uint8Array | string>): MechanismSession;
}
