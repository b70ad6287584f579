/**
 * Owns what a header says about binary frames beside a payload (revision 3, PROTOCOL.md §5.1):
 * the binary types, where each value sits (its slot), and the schema receivers check them with.
 * The codec that fills and reads the slots is binary-payload.ts.
 */
import * as v from "valibot";

/** The binary types a payload may carry, by the name that travels in the header. */
export const BINARY_VIEW_TYPES = {
  Uint8Array,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;
export type BinaryType = keyof typeof BINARY_VIEW_TYPES | "DataView" | "ArrayBuffer";
export const BINARY_TYPES = [...Object.keys(BINARY_VIEW_TYPES), "DataView", "ArrayBuffer"] as readonly BinaryType[];

/** Most binary values in one payload, and deepest path to one. */
export const MAX_BINARY_SLOTS = 1024;
export const MAX_BINARY_PATH_DEPTH = 32;

/** The codecs a binary frame may be compressed with, by their name in the slot (compression.ts uses them). */
export const COMPRESSION_CODECS = ["zstd", "gzip"] as const;
export type CompressionCodec = (typeof COMPRESSION_CODECS)[number];

/** Largest size a compressed frame may announce: a receiver never inflates one frame beyond this. */
export const MAX_DECOMPRESSED_BYTES = 1024 * 1024 * 1024;

/** Where one binary value sits in the JSON value, and what it was. */
export interface BinarySlot {
  /** Keys and array indices from the root. */
  path: (string | number)[];
  type: BinaryType;
  /** The frame holds the value's bytes compressed with this codec (§5.2); absent: as they are. */
  compression?: CompressionCodec;
  /** With `compression`: the value's size in bytes once inflated (at most MAX_DECOMPRESSED_BYTES). */
  size?: number;
}

/** Binary frames beside a payload, as the router passes them on untouched: where they go, and their bytes. */
export interface BinaryFrames {
  readonly slots: readonly BinarySlot[];
  readonly frames: readonly Uint8Array[];
}

export const BinarySlotsSchema = v.pipe(
  v.array(
    v.pipe(
      v.object({
        path: v.pipe(
          v.array(v.union([v.pipe(v.string(), v.maxLength(1024)), v.pipe(v.number(), v.safeInteger(), v.minValue(0))])),
          v.maxLength(MAX_BINARY_PATH_DEPTH),
        ),
        type: v.picklist(BINARY_TYPES),
        compression: v.optional(v.picklist(COMPRESSION_CODECS)),
        size: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(MAX_DECOMPRESSED_BYTES))),
      }),
      v.check(
        (slot) => (slot.compression === undefined) === (slot.size === undefined),
        "a compressed slot needs its size, and only a compressed slot has one",
      ),
    ),
  ),
  v.maxLength(MAX_BINARY_SLOTS),
);
