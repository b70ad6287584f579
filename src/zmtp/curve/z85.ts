/**
 * Owns Z85 (ZeroMQ RFC 32): the printable encoding of CURVE keys, 4 bytes as 5 characters,
 * big-endian. Pure functions; every malformed input is refused with a RangeError.
 */

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/** Character code → digit value, 0xff where the character is not in the alphabet. */
const DIGITS = (() => {
  const table = new Uint8Array(128).fill(0xff);
  for (let i = 0; i < ALPHABET.length; i++) table[ALPHABET.charCodeAt(i)] = i;
  return table;
})();

/** Encodes bytes whose length is a multiple of 4 (RFC 32 requires it). */
export function z85Encode(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("z85Encode takes a Uint8Array");
  if (bytes.length % 4 !== 0) throw new RangeError(`Z85 encodes a multiple of 4 bytes; got ${bytes.length}`);
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    // >>> 0 keeps the 32-bit value unsigned.
    let value = ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
    let group = "";
    for (let d = 0; d < 5; d++) {
      group = ALPHABET[value % 85] + group;
      value = Math.floor(value / 85);
    }
    out += group;
  }
  return out;
}

/** Decodes a Z85 string whose length is a multiple of 5. */
export function z85Decode(text: string): Uint8Array {
  if (typeof text !== "string") throw new TypeError("z85Decode takes a string");
  if (text.length % 5 !== 0) throw new RangeError(`Z85 text length must be a multiple of 5; got ${text.length}`);
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0;
    for (let d = 0; d < 5; d++) {
      const code = text.charCodeAt(i + d);
      const digit = code < 128 ? DIGITS[code] : 0xff;
      if (digit === 0xff) throw new RangeError(`invalid Z85 character ${JSON.stringify(text[i + d])} at ${i + d}`);
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) throw new RangeError(`Z85 group at ${i} exceeds 32 bits`);
    out[o] = value >>> 24;
    out[o + 1] = (value >>> 16) & 0xff;
    out[o + 2] = (value >>> 8) & 0xff;
    out[o + 3] = value & 0xff;
  }
  return out;
}
