/**
 * Security mechanisms (RFC 23 "Mechanisms"). A mechanism runs the handshake that follows the
 * greeting; NULL is the only one today, and PLAIN or CURVE plug in here without touching the codec.
 */
import type { Buffer } from "node:buffer";
import { type Command, encodeCommand, encodeMetadata, parseErrorCommand, parseMetadata } from "./codec.ts";
import { ZmtpProtocolError } from "./errors.ts";

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

/** The NULL mechanism (RFC 37): both sides send READY with their metadata; no security. */
export const nullMechanism: Mechanism = {
  name: "NULL",
  asServer: false,
  createSession(metadata) {
    let done = false;
    return {
      start: () => [encodeCommand("READY", encodeMetadata(metadata))],
      onCommand(command) {
        if (done) throw new ZmtpProtocolError(`unexpected ${command.name} command after READY`);
        if (command.name === "READY") {
          done = true;
          return { send: [], peerMetadata: parseMetadata(command.data) };
        }
        if (command.name === "ERROR") throw new ZmtpProtocolError(`peer refused the handshake: ${parseErrorCommand(command.data)}`);
        throw new ZmtpProtocolError(`unexpected ${command.name} command during the NULL handshake`);
      },
    };
  },
};
