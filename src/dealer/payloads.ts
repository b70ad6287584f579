/**
 * Owns what a dealer's payloads may be: arguments rebuilt with their binary frames (revision 3),
 * and results or chunks that fit in one message of the router's (its maxMessageSize, from WELCOME).
 */
import { type BinarySlot, decodeValue, ProtocolError, ProtocolFailure, ValidationError } from "../protocol/index.ts";

/** Room for the frames around a payload (protocol id, kind, header) within the router's message limit. */
const MESSAGE_OVERHEAD_BYTES = 66 * 1024;

/** Arguments that came with binary frames: the array, its binary values back in place. */
export function binaryArgs(
  payload: Uint8Array,
  slots: readonly BinarySlot[],
  frames: readonly Uint8Array[] | undefined,
): { ok: true; value: unknown[] } | { ok: false; error: ProtocolError } {
  const decoded = decodeValue(payload, slots, frames);
  if (!decoded.ok) return decoded;
  if (!Array.isArray(decoded.value)) {
    return {
      ok: false,
      error: new ProtocolError("REQUEST payload must be a JSON array of arguments", {
        data: { reason: ProtocolFailure.NOT_ARRAY, frame: 3 },
      }),
    };
  }
  return { ok: true, value: decoded.value };
}

/**
 * A payload the router would refuse (bigger than its `limit`) closes the dealer's connection and
 * loses every call on it: refuse it for this call alone instead, with a ValidationError.
 */
export function checkFits(
  payload: Uint8Array,
  binary: readonly Uint8Array[] | undefined,
  limit: number | undefined,
  path: "result" | "chunk",
): void {
  if (limit === undefined) return;
  let size = payload.length;
  for (const frame of binary ?? []) size += frame.byteLength;
  if (size + MESSAGE_OVERHEAD_BYTES <= limit) return;
  throw new ValidationError(`the ${path} is ${size} bytes, more than the router accepts in one message (${limit} bytes)`, {
    data: { path, size, limit },
  });
}
