/**
 * Owns what a dealer's payloads may be: arguments rebuilt with their binary frames (revision 3),
 * and results or chunks that fit in one message of the router's (its maxMessageSize, from WELCOME).
 */
import { type BinarySlot, decodeValue, ProtocolError, ProtocolFailure } from "../protocol/index.ts";

/**
 * A payload the router would refuse (bigger than its limit) would fail the call there: refuse it
 * for this call here, at once, with a ValidationError.
 */
export { checkFits } from "../protocol/index.ts";

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
