/**
 * Owns the rule that a payload must fit in one message of the router's (its maxMessageSize, which
 * WELCOME tells clients and dealers): the sender checks before sending, so an oversized value
 * fails that call alone, at once, with a clear ValidationError, instead of being streamed to a
 * router that skips it. Pure: no I/O.
 */
import { ValidationError } from "./errors.ts";

/** Room for the frames around a payload (protocol id, kind, header) within the router's message limit. */
export const MESSAGE_OVERHEAD_BYTES = 66 * 1024;

/** Bytes of a payload frame and its binary frames together. */
export function payloadBytes(payload: Uint8Array, binary: readonly Uint8Array[] | undefined): number {
  let size = payload.byteLength;
  if (binary !== undefined) for (const frame of binary) size += frame.byteLength;
  return size;
}

/**
 * Throws ValidationError (`data: {path, size, limit}`) when `payload` and its binary frames, with
 * the other frames of their message, would pass `limit`; no limit known (undefined): no check.
 */
export function checkFits(
  payload: Uint8Array,
  binary: readonly Uint8Array[] | undefined,
  limit: number | undefined,
  path: "args" | "result" | "chunk",
): void {
  if (limit === undefined) return;
  const size = payloadBytes(payload, binary);
  if (size + MESSAGE_OVERHEAD_BYTES <= limit) return;
  const what = path === "args" ? "the arguments are" : `the ${path} is`;
  throw new ValidationError(`${what} ${size} bytes, more than the router accepts in one message (${limit} bytes)`, {
    data: { path, size, limit },
  });
}
