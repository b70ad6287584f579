/**
 * Frame helpers shared by the conformance cases and the libzmq peer controller.
 *
 * Big frames never travel through the peer's JSON channel: they are described
 * as `{fill, size}` / `{pattern, size}` specs (generated on the peer) and
 * reported back as `{size, sha256}` digests.
 */
import { createHash } from "node:crypto";

/** Frames larger than this are reported by the libzmq peer as a digest. */
export const INLINE_LIMIT = 4096;

export interface FrameDigest {
  size: number;
  sha256: string;
}

/** A frame the libzmq peer should generate itself (never shipped through JSON). */
export type FrameSpec = { fill: number; size: number } | { pattern: number; size: number };

/** What a frame argument to the peer can be. Strings are UTF-8. */
export type FrameInput = Uint8Array | string | FrameSpec;

/** What the peer reports for a received frame: the bytes, or a digest for frames > 4 KiB. */
export type ReceivedFrame = Buffer | FrameDigest;

export function sha256(buf: Uint8Array): string {
  return createHash("sha256").update(buf).digest("hex");
}

/** `size` bytes of `fill`. */
export function bigFrame(fill: number, size: number): Buffer {
  return Buffer.alloc(size, fill & 0xff);
}

/**
 * Deterministic non-uniform bytes, identical to the peer's `{pattern, size}`:
 * byte[i] = (i + 7*(i>>>8) + 13*(i>>>16) + seed) & 0xff. Unlike a fill, a
 * misordered or shifted chunk changes the digest.
 */
export function patternFrame(seed: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i + 7 * (i >>> 8) + 13 * (i >>> 16) + seed) & 0xff;
  return buf;
}

export function isDigest(f: unknown): f is FrameDigest {
  return typeof f === "object" && f !== null && !(f instanceof Uint8Array) && typeof (f as FrameDigest).sha256 === "string";
}

export function isFrameSpec(f: unknown): f is FrameSpec {
  return (
    typeof f === "object" &&
    f !== null &&
    !(f instanceof Uint8Array) &&
    typeof (f as { size?: unknown }).size === "number" &&
    ("fill" in f || "pattern" in f)
  );
}

export function toBuffer(f: Uint8Array | string): Buffer {
  if (typeof f === "string") return Buffer.from(f, "utf8");
  return Buffer.isBuffer(f) ? f : Buffer.from(f.buffer, f.byteOffset, f.byteLength);
}

/** Materialises a frame locally (specs are generated exactly as the peer would). */
export function materialize(f: FrameInput): Buffer {
  if (typeof f === "string" || f instanceof Uint8Array) return toBuffer(f);
  if ("fill" in f) return bigFrame(f.fill, f.size);
  return patternFrame(f.pattern, f.size);
}

/** Size + sha256 of a frame, whatever form it is in. */
export function digestOf(f: FrameInput | FrameDigest): FrameDigest {
  if (isDigest(f)) return { size: f.size, sha256: f.sha256 };
  const buf = materialize(f);
  return { size: buf.length, sha256: sha256(buf) };
}

/** The JSON form of a frame for the peer's `send` command. */
export function encodeForPeer(f: FrameInput): { b64: string } | FrameSpec {
  if (isFrameSpec(f)) return f;
  return { b64: toBuffer(f as Uint8Array | string).toString("base64") };
}

/** Decodes the peer's JSON form of a received frame. */
export function decodeFromPeer(f: unknown): ReceivedFrame {
  if (typeof f === "object" && f !== null) {
    const o = f as { b64?: unknown; size?: unknown; sha256?: unknown };
    if (typeof o.b64 === "string") return Buffer.from(o.b64, "base64");
    if (typeof o.size === "number" && typeof o.sha256 === "string") return { size: o.size, sha256: o.sha256 };
  }
  throw new Error(`libzmq peer returned an undecodable frame: ${JSON.stringify(f)}`);
}

/** Short human description of one frame: size plus a hex/utf8 preview or a digest prefix. */
export function describeFrame(f: FrameInput | ReceivedFrame): string {
  if (isDigest(f)) return `<${f.size} B sha256:${f.sha256.slice(0, 12)}…>`;
  if (isFrameSpec(f)) return "fill" in f ? `<${f.size} B fill 0x${f.fill.toString(16)}>` : `<${f.size} B pattern ${f.pattern}>`;
  const buf = toBuffer(f as Uint8Array | string);
  if (buf.length === 0) return "<0 B>";
  const printable = buf.length <= 48 && /^[\x20-\x7e]*$/.test(buf.toString("latin1"));
  if (printable) return `<${buf.length} B "${buf.toString("latin1")}">`;
  const hex = buf.subarray(0, 16).toString("hex");
  return `<${buf.length} B 0x${hex}${buf.length > 16 ? "…" : ""}${buf.length > 16 ? ` sha256:${sha256(buf).slice(0, 12)}…` : ""}>`;
}

export function describeFrames(frames: readonly (FrameInput | ReceivedFrame)[]): string {
  return `[${frames.length} frame${frames.length === 1 ? "" : "s"}: ${frames.map(describeFrame).join(", ")}]`;
}

/** True when both frames have the same bytes (compared by digest when either side is one). */
export function sameFrame(a: FrameInput | ReceivedFrame, b: FrameInput | ReceivedFrame): boolean {
  if (isDigest(a) || isDigest(b) || isFrameSpec(a) || isFrameSpec(b)) {
    const da = digestOf(a);
    const db = digestOf(b);
    return da.size === db.size && da.sha256 === db.sha256;
  }
  return toBuffer(a as Uint8Array | string).equals(toBuffer(b as Uint8Array | string));
}

/**
 * Throws an Error naming the first difference when `actual` is not frame-for-frame
 * equal to `expected`.
 */
export function assertFrames(
  actual: readonly (FrameInput | ReceivedFrame)[],
  expected: readonly (FrameInput | ReceivedFrame)[],
  label: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(
      `${label}: expected ${expected.length} frames, got ${actual.length}\n  expected ${describeFrames(expected)}\n  actual   ${describeFrames(actual)}`,
    );
  }
  for (let i = 0; i < expected.length; i++) {
    if (!sameFrame(actual[i], expected[i])) {
      throw new Error(
        `${label}: frame ${i} differs: expected ${describeFrame(expected[i])}, got ${describeFrame(actual[i])}\n  expected ${describeFrames(expected)}\n  actual   ${describeFrames(actual)}`,
      );
    }
  }
}
