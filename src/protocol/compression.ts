/**
 * Owns the optional compression of binary frames (PROTOCOL.md §5.2): which codecs there are
 * (zstd, gzip: what node:zlib ships in Bun and Node, no native addon), the `compress` option that
 * asks for one, the rule that bytes already in a compressed format are left alone unless forced,
 * and decompression bounded by the size the slot announces. Pure computation: no I/O.
 */
import type { Buffer } from "node:buffer";
import * as zlib from "node:zlib";
import { COMPRESSION_CODECS, type CompressionCodec, MAX_DECOMPRESSED_BYTES } from "./binary-slots.ts";
import { ProtocolError, ProtocolFailure, ValidationError } from "./errors.ts";

export { COMPRESSION_CODECS, type CompressionCodec, MAX_DECOMPRESSED_BYTES };

/**
 * What a caller (per call) or a service method (for its results and chunks) passes as `compress`:
 * a codec name, or `{ codec, force, level }`. `force: true` compresses every binary frame, even
 * one that already holds a compressed format (gzip, zstd, zip, PNG, JPEG, WebP, MP4, ...) or one
 * too small to gain; `level` is the codec's level (zstd 1…19, default 3; gzip 1…9, default 6).
 */
export type CompressOption = CompressionCodec | { codec: CompressionCodec; force?: boolean; level?: number };

/** A checked `compress` option. */
export interface CompressionPlan {
  readonly codec: CompressionCodec;
  readonly force: boolean;
  readonly level: number | undefined;
}

/** Frames smaller than this are sent as they are (unless forced): compressing them gains nothing. */
export const MIN_COMPRESS_BYTES = 1024;

const LEVELS: Record<CompressionCodec, { min: number; max: number }> = { zstd: { min: 1, max: 19 }, gzip: { min: 1, max: 9 } };

type ZstdZlib = typeof zlib & {
  zstdCompressSync?: (data: Uint8Array, options?: { params?: Record<number, number> }) => Buffer;
  zstdDecompressSync?: (data: Uint8Array, options?: { maxOutputLength?: number }) => Buffer;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};
const z = zlib as ZstdZlib;

/** Whether this runtime can compress and decompress with `codec` (zstd needs Bun or Node ≥ 22.15). */
export function codecAvailable(codec: CompressionCodec): boolean {
  return codec === "gzip" || (typeof z.zstdCompressSync === "function" && typeof z.zstdDecompressSync === "function");
}

const ZSTD_MISSING = "zstd compression needs Bun or Node ≥ 22.15 (node:zlib zstdCompressSync); this runtime has none: use gzip";

/**
 * Checks a `compress` option; undefined (off) stays undefined. Throws ValidationError naming
 * `path` for anything else than a known codec, a bad level, or zstd on a runtime without it.
 */
export function resolveCompress(option: unknown, path: string): CompressionPlan | undefined {
  if (option === undefined) return undefined;
  const spec = typeof option === "string" ? { codec: option } : option;
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    throw new ValidationError(`${path} must be "zstd", "gzip" or { codec, force?, level? }`, { data: { path } });
  }
  const { codec, force, level } = spec as { codec?: unknown; force?: unknown; level?: unknown };
  if (!COMPRESSION_CODECS.includes(codec as CompressionCodec)) {
    throw new ValidationError(`${path}: codec must be "zstd" or "gzip", got ${JSON.stringify(codec)}`, { data: { path } });
  }
  const name = codec as CompressionCodec;
  if (force !== undefined && typeof force !== "boolean") throw new ValidationError(`${path}.force must be a boolean`, { data: { path } });
  const range = LEVELS[name];
  if (level !== undefined && (!Number.isInteger(level) || (level as number) < range.min || (level as number) > range.max)) {
    throw new ValidationError(`${path}.level for ${name} must be an integer ${range.min}…${range.max}`, { data: { path } });
  }
  if (!codecAvailable(name)) throw new ValidationError(ZSTD_MISSING, { data: { path } });
  return { codec: name, force: force === true, level: level as number | undefined };
}

const startsWith = (bytes: Uint8Array, offset: number, magic: readonly number[]) => {
  if (bytes.byteLength < offset + magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[offset + i] !== magic[i]) return false;
  return true;
};
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** Magic numbers of formats that are compressed already: compressing them again gains nothing. */
const COMPRESSED_FORMATS: readonly { name: string; offset: number; magic: readonly number[] }[] = [
  { name: "gzip", offset: 0, magic: [0x1f, 0x8b] },
  { name: "zstd", offset: 0, magic: [0x28, 0xb5, 0x2f, 0xfd] },
  { name: "zip", offset: 0, magic: [0x50, 0x4b, 0x03, 0x04] },
  { name: "bzip2", offset: 0, magic: ascii("BZh") },
  { name: "xz", offset: 0, magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { name: "7z", offset: 0, magic: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c] },
  { name: "lz4", offset: 0, magic: [0x04, 0x22, 0x4d, 0x18] },
  { name: "rar", offset: 0, magic: ascii("Rar!") },
  { name: "png", offset: 0, magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { name: "jpeg", offset: 0, magic: [0xff, 0xd8, 0xff] },
  { name: "gif", offset: 0, magic: ascii("GIF8") },
  { name: "webp", offset: 8, magic: ascii("WEBP") },
  { name: "mp4/mov/heic/avif", offset: 4, magic: ascii("ftyp") },
  { name: "webm/mkv", offset: 0, magic: [0x1a, 0x45, 0xdf, 0xa3] },
  { name: "ogg", offset: 0, magic: ascii("OggS") },
  { name: "flac", offset: 0, magic: ascii("fLaC") },
  { name: "mp3", offset: 0, magic: ascii("ID3") },
];

/** The name of the compressed format `bytes` start with (e.g. "png"), or undefined. */
export function compressedFormatOf(bytes: Uint8Array): string | undefined {
  for (const format of COMPRESSED_FORMATS) {
    if (format.name === "webp" && !startsWith(bytes, 0, ascii("RIFF"))) continue;
    if (startsWith(bytes, format.offset, format.magic)) return format.name;
  }
  return undefined;
}

/**
 * The bytes to send for one binary frame under `plan`: compressed when that is asked for and
 * worth it (at least MIN_COMPRESS_BYTES, not a compressed format already, and smaller after), or
 * with `force` always; undefined means send the frame as it is.
 */
export function compressFrame(bytes: Uint8Array, plan: CompressionPlan): Uint8Array | undefined {
  if (!plan.force && (bytes.byteLength < MIN_COMPRESS_BYTES || compressedFormatOf(bytes) !== undefined)) return undefined;
  const packed =
    plan.codec === "zstd"
      ? z.zstdCompressSync!(
          bytes,
          plan.level === undefined ? undefined : { params: { [z.constants.ZSTD_c_compressionLevel ?? 100]: plan.level } },
        )
      : zlib.gzipSync(bytes, plan.level === undefined ? undefined : { level: plan.level });
  if (!plan.force && packed.byteLength >= bytes.byteLength) return undefined;
  return packed;
}

/**
 * The original bytes of a frame compressed with `codec`, which must inflate to exactly `size`
 * bytes: never more is allocated, so a small frame cannot claim gigabytes. Throws ProtocolError
 * (SCHEMA) for a bad frame, a wrong size, or a codec this runtime lacks.
 */
export function decompressFrame(bytes: Uint8Array, codec: CompressionCodec, size: number, index: number): Uint8Array {
  if (!codecAvailable(codec)) {
    throw new ProtocolError(`binary frame ${index} is zstd-compressed: ${ZSTD_MISSING}`, { data: { reason: ProtocolFailure.SCHEMA } });
  }
  let out: Buffer;
  try {
    // One byte more than announced, so that a frame inflating past `size` is caught, not cut.
    const options = { maxOutputLength: Math.max(1, size + 1) };
    out = codec === "zstd" ? z.zstdDecompressSync!(bytes, options) : zlib.gunzipSync(bytes, options);
  } catch (error) {
    throw new ProtocolError(`binary frame ${index} is not valid ${codec} data of ${size} bytes: ${(error as Error).message}`, {
      data: { reason: ProtocolFailure.SCHEMA },
    });
  }
  if (out.byteLength !== size) {
    throw new ProtocolError(`binary frame ${index} inflates to ${out.byteLength} bytes, not the ${size} its slot announces`, {
      data: { reason: ProtocolFailure.SCHEMA },
    });
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
