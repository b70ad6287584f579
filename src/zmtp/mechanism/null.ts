/** Owns the NULL mechanism (RFC 37): both sides send READY with their metadata; no security. */
import { encodeCommand, encodeMetadata, parseErrorCommand, parseMetadata } from "../codec.ts";
import { ZmtpProtocolError } from "../errors.ts";
import type { Mechanism } from "./mechanism.ts";

/** The NULL mechanism (RFC 37): both sides send READY with their metadata; no security. */
export const nullMechanism: Mechanism = {
  name: "NULL",
  asServer: false,
  frameOverhead: 0,
  createSession(metadata) {
    let done = false;
    return {
      start: () => [encodeCommand("READY", encodeMetadata(metadata))],
      onCommand(command) {
        if (done) throw new ZmtpProtocolError(`unexpected ${command.name} command after READY`);
        if (command.name === "READY") {
          done = true;
          return { send: [], done: { peerMetadata: parseMetadata(command.data) } };
        }
        if (command.name === "ERROR") throw new ZmtpProtocolError(`peer refused the handshake: ${parseErrorCommand(command.data)}`);
        throw new ZmtpProtocolError(`unexpected ${command.name} command during the NULL handshake`);
      },
    };
  },
};
