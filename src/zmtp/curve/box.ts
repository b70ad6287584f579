/**
 * Owns the NaCl primitives CurveZMQ is built from, on @noble/ciphers and @noble/curves: X25519,
 * crypto_box_beforenm (X25519 then HSalsa20), and XSalsa20-Poly1305 boxes in libsodium's "easy"
 * layout (16-byte MAC, then ciphertext; no zero padding). Pure functions, no I/O.
 */
import { poly1305 } from "@noble/ciphers/_poly1305.js";
import { hsalsa, salsa20, xsalsa20poly1305 } from "@noble/ciphers/salsa.js";
import { x25519 } from "@noble/curves/ed25519.js";

export const KEY_SIZE = 32;
export const MAC_SIZE = 16;
export const NONCE_SIZE = 24;

/** "expand 32-byte k" as little-endian words: HSalsa20's constant in crypto_box_beforenm. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

/** 32 bytes from the platform CSPRNG. */
export function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  crypto.getRandomValues(out);
  return out;
}

/** A fresh X25519 key pair as raw bytes (crypto_box_keypair). */
export function generateKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const secretKey = randomBytes(KEY_SIZE);
  return { publicKey: x25519.getPublicKey(secretKey), secretKey };
}

/** The public key of an X25519 secret key (crypto_scalarmult_base). */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secretKey);
}

/**
 * crypto_box_beforenm: the symmetric key two parties share, computed once per key pair. Returns
 * null when the peer's key is a low-order point (all zeros included), which libsodium refuses too.
 */
export function sharedKey(peerPublicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null {
  let secret: Uint8Array;
  try {
    secret = x25519.getSharedSecret(secretKey, peerPublicKey);
  } catch {
    return null;
  }
  const keyWords = new Uint32Array(8);
  for (let i = 0; i < 8; i++) keyWords[i] = readWordLE(secret, i * 4);
  const out = new Uint32Array(8);
  hsalsa(SIGMA, keyWords, new Uint32Array(4), out);
  const key = new Uint8Array(KEY_SIZE);
  for (let i = 0; i < 8; i++) writeWordLE(key, i * 4, out[i]);
  return key;
}

/** XSalsa20-Poly1305 seal (crypto_box_easy_afternm / crypto_secretbox_easy): MAC then ciphertext. */
export function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return xsalsa20poly1305(key, nonce).encrypt(plainView(plaintext));
}

/** Opens what seal() made; null when the MAC does not verify (wrong key, nonce or bytes). */
export function open(key: Uint8Array, nonce: Uint8Array, box: Uint8Array): Uint8Array | null {
  if (box.length < MAC_SIZE) return null;
  try {
    return xsalsa20poly1305(key, nonce).decrypt(plainView(box));
  } catch {
    return null;
  }
}

/**
 * The same bytes as a plain Uint8Array. noble's loops over a node:buffer Buffer (a Uint8Array
 * subclass) ran 5-10x slower under Bun: 16 MiB sealed in ~1 s instead of ~0.1 s.
 */
function plainView(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * XSalsa20-Poly1305 for a stream of nonces that share their first 16 bytes (CurveZMQ's MESSAGE
 * nonces: "CurveZMQMESSAGEC" + counter). XSalsa20 is Salsa20 keyed with HSalsa20(key, nonce[0..16]),
 * so that subkey is computed once per direction instead of per frame; every frame is sealed in
 * place with noble's Salsa20 and Poly1305. Same bytes as crypto_box_easy_afternm (the unit tests
 * check them against noble's xsalsa20poly1305). All the cipher and MAC arithmetic is noble's: a
 * faster hand-written path for small frames was measured (about 3x less per frame) and left out,
 * because the project takes its crypto from an audited library only.
 */
export class PrefixedBoxStream {
  private readonly subkey: Uint8Array;
  private readonly polyKey = new Uint8Array(32);
  private readonly zeros = new Uint8Array(32);

  /** `prefix`: the 16 nonce bytes every message shares. */
  constructor(key: Uint8Array, prefix: Uint8Array) {
    const keyWords = new Uint32Array(8);
    for (let i = 0; i < 8; i++) keyWords[i] = readWordLE(key, i * 4);
    const nonceWords = new Uint32Array(4);
    for (let i = 0; i < 4; i++) nonceWords[i] = readWordLE(prefix, i * 4);
    const out = new Uint32Array(8);
    hsalsa(SIGMA, keyWords, nonceWords, out);
    this.subkey = new Uint8Array(KEY_SIZE);
    for (let i = 0; i < 8; i++) writeWordLE(this.subkey, i * 4, out[i]);
  }

  /**
   * Seals in place: `region` holds 32 bytes of scratch, then the plaintext. Afterwards
   * region[16..32] is the MAC and region[32..] the ciphertext (region[0..16] is left zero).
   * `counter` is the nonce's last 8 bytes.
   */
  seal(counter: Uint8Array, region: Uint8Array): void {
    const plain = plainView(region);
    plain.fill(0, 0, 32);
    // Keystream block 0 begins with the Poly1305 key: XOR over 32 zero bytes yields it in place.
    salsa20(this.subkey, counter, plain, plain);
    const tag = poly1305(plain.subarray(32), plain.subarray(0, 32));
    plain.fill(0, 0, 16);
    plain.set(tag, 16);
  }

  /**
   * Opens `box` (MAC then ciphertext) into `region` (box length + 16 bytes); the plaintext is
   * region[32..]. Returns false, leaving no plaintext, when the MAC does not verify.
   */
  open(counter: Uint8Array, box: Uint8Array, region: Uint8Array): boolean {
    const source = plainView(box);
    const target = plainView(region);
    salsa20(this.subkey, counter, this.zeros, this.polyKey);
    const tag = poly1305(source.subarray(MAC_SIZE), this.polyKey);
    let difference = 0;
    for (let i = 0; i < MAC_SIZE; i++) difference |= tag[i] ^ source[i];
    if (difference !== 0) return false;
    target.fill(0, 0, 32);
    target.set(source.subarray(MAC_SIZE), 32);
    salsa20(this.subkey, counter, target, target);
    return true;
  }
}

function readWordLE(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

function writeWordLE(bytes: Uint8Array, offset: number, word: number): void {
  bytes[offset] = word & 0xff;
  bytes[offset + 1] = (word >>> 8) & 0xff;
  bytes[offset + 2] = (word >>> 16) & 0xff;
  bytes[offset + 3] = word >>> 24;
}
