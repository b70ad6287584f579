/** Owns CurveZMQ nonces (RFC 26): a 16-byte prefix naming the command, then a big-endian 64-bit counter. */

/** A 24-byte nonce with `prefix` (16 or 8 ASCII bytes) and room for the rest. */
export function nonceWithPrefix(prefix: string): Uint8Array {
  const nonce = new Uint8Array(24);
  for (let i = 0; i < prefix.length; i++) nonce[i] = prefix.charCodeAt(i);
  return nonce;
}

/** Writes a counter below 2^53 as 8 big-endian bytes at `offset`. */
export function writeCounter(target: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / 0x1_0000_0000);
  const low = value >>> 0;
  target[offset] = high >>> 24;
  target[offset + 1] = (high >>> 16) & 0xff;
  target[offset + 2] = (high >>> 8) & 0xff;
  target[offset + 3] = high & 0xff;
  target[offset + 4] = low >>> 24;
  target[offset + 5] = (low >>> 16) & 0xff;
  target[offset + 6] = (low >>> 8) & 0xff;
  target[offset + 7] = low & 0xff;
}

/**
 * Reads 8 big-endian bytes as a number. Above 2^53 it rounds, but monotonically, so "strictly
 * greater than the last" still never accepts a replay.
 */
export function readCounter(source: Uint8Array, offset: number): number {
  const high = ((source[offset] << 24) | (source[offset + 1] << 16) | (source[offset + 2] << 8) | source[offset + 3]) >>> 0;
  const low = ((source[offset + 4] << 24) | (source[offset + 5] << 16) | (source[offset + 6] << 8) | source[offset + 7]) >>> 0;
  return high * 0x1_0000_0000 + low;
}
