/**
 * Compression of binary frames (src/protocol/compression.ts and binary-payload.ts, PROTOCOL.md
 * §5.2): the `compress` option's checks, the formats that are left alone unless forced, the slot
 * fields, and decompression that never inflates past the size its slot announces.
 */
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";
import * as v from "valibot";
import {
  BinarySlotsSchema,
  compressedFormatOf,
  decodeBinaryPayload,
  encodeBinaryPayload,
  ProtocolError,
  resolveCompress,
  ValidationError,
} from "../../src/protocol/index.ts";

/** 64 KiB that compress well: a repeating ramp. */
const compressible = () => Uint8Array.from({ length: 64 * 1024 }, (_, i) => i % 251);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));
/** `magic` at `offset`, then compressible bytes: only the magic number says it is compressed. */
function withMagic(magic: number[], offset = 0): Uint8Array {
  const bytes = compressible();
  bytes.set(magic, offset);
  return bytes;
}

describe("the compress option", () => {
  test("a codec name or { codec, force, level }; anything else is a ValidationError naming the option", () => {
    expect(resolveCompress(undefined, "compress")).toBeUndefined();
    expect(resolveCompress("zstd", "compress")).toEqual({ codec: "zstd", force: false, level: undefined });
    expect(resolveCompress({ codec: "gzip", force: true, level: 9 }, "compress")).toEqual({ codec: "gzip", force: true, level: 9 });
    for (const bad of ["brotli", 3, null, ["zstd"], { codec: "lz4" }, { codec: "zstd", force: "yes" }, { codec: "gzip", level: 10 }]) {
      const error = (() => {
        try {
          resolveCompress(bad, "Img.compress");
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).message).toContain("Img.compress");
    }
  });
});

describe("formats that are compressed already", () => {
  test("are recognised by their magic numbers", () => {
    const cases: [string, number[], number?][] = [
      ["gzip", [0x1f, 0x8b]],
      ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
      ["zip", [0x50, 0x4b, 0x03, 0x04]],
      ["png", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
      ["jpeg", [0xff, 0xd8, 0xff, 0xe0]],
      ["gif", ascii("GIF89a")],
      ["mp4/mov/heic/avif", ascii("ftypisom"), 4],
      ["webm/mkv", [0x1a, 0x45, 0xdf, 0xa3]],
      ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
      ["7z", [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
      ["bzip2", ascii("BZh9")],
      ["ogg", ascii("OggS")],
    ];
    for (const [name, magic, offset] of cases) expect(compressedFormatOf(withMagic(magic, offset))).toBe(name);
    const webp = withMagic(ascii("RIFF"));
    webp.set(ascii("WEBP"), 8);
    expect(compressedFormatOf(webp)).toBe("webp");
    expect(compressedFormatOf(withMagic(ascii("WEBP"), 8))).toBeUndefined(); // not RIFF
    expect(compressedFormatOf(compressible())).toBeUndefined();
    expect(compressedFormatOf(new Uint8Array(0))).toBeUndefined();
  });
});

for (const codec of ["zstd", "gzip"] as const) {
  describe(`${codec}: encoding and decoding binary values`, () => {
    test("a compressible frame is compressed, its slot says how and how big it was, and it decodes to the same bytes and type", () => {
      const data = new Float32Array(compressible().buffer);
      const encoded = encodeBinaryPayload({ data, tag: "x" }, "args", resolveCompress(codec, "compress"));
      expect(encoded.slots).toEqual([{ path: ["data"], type: "Float32Array", compression: codec, size: data.byteLength }]);
      expect(encoded.frames[0].byteLength).toBeLessThan(data.byteLength / 4);
      expect(v.safeParse(BinarySlotsSchema, encoded.slots).success).toBe(true);
      const decoded = decodeBinaryPayload(encoded.json, encoded.slots, encoded.frames) as { data: Float32Array; tag: string };
      expect(decoded.data).toBeInstanceOf(Float32Array);
      expect(decoded.data).toEqual(data);
      expect(decoded.tag).toBe("x");
    });

    test("skipped: formats compressed already, frames under 1 KiB, bytes that do not shrink; off by default", () => {
      const plan = resolveCompress(codec, "compress");
      const png = withMagic([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const small = new Uint8Array(1000);
      const noise = new Uint8Array(randomBytes(64 * 1024));
      const encoded = encodeBinaryPayload([png, small, noise], "args", plan);
      expect(encoded.slots.map((slot) => slot.compression)).toEqual([undefined, undefined, undefined]);
      expect(encoded.frames.map((frame) => frame.byteLength)).toEqual([png.byteLength, 1000, noise.byteLength]);
      expect(encodeBinaryPayload([compressible()], "args").slots[0].compression).toBeUndefined();
    });

    test("force compresses them anyway", () => {
      const png = withMagic([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      const encoded = encodeBinaryPayload([png, new Uint8Array(10)], "args", resolveCompress({ codec, force: true }, "compress"));
      expect(encoded.slots.map((slot) => slot.compression)).toEqual([codec, codec]);
      expect(encoded.frames[0].byteLength).toBeLessThan(png.byteLength);
      const decoded = decodeBinaryPayload(encoded.json, encoded.slots, encoded.frames) as Uint8Array[];
      expect(decoded[0]).toEqual(png);
      expect(decoded[1]).toEqual(new Uint8Array(10));
    });

    test("a frame that inflates to more or less than its slot's size, or is not the codec's data, is a ProtocolError", () => {
      const original = compressible();
      const packed = codec === "zstd" ? zstdCompressSync(original) : gzipSync(original);
      const decode = (size: number, frame: Uint8Array = packed) =>
        (() => {
          try {
            decodeBinaryPayload(new TextEncoder().encode("[null]"), [{ path: [0], type: "Uint8Array", compression: codec, size }], [frame]);
          } catch (e) {
            return e;
          }
        })();
      for (const size of [1000, original.byteLength + 1, 0]) expect(decode(size)).toBeInstanceOf(ProtocolError);
      expect(decode(10, new Uint8Array([1, 2, 3]))).toBeInstanceOf(ProtocolError);
      expect(decode(original.byteLength)).toBeUndefined();
    });
  });
}

describe("slot fields", () => {
  test("compression needs size and size needs compression; size is at most 1 GiB; unknown codecs are refused", () => {
    const ok = (slot: unknown) => v.safeParse(BinarySlotsSchema, [slot]).success;
    expect(ok({ path: [0], type: "Uint8Array", compression: "zstd", size: 10 })).toBe(true);
    expect(ok({ path: [0], type: "Uint8Array", compression: "zstd" })).toBe(false);
    expect(ok({ path: [0], type: "Uint8Array", size: 10 })).toBe(false);
    expect(ok({ path: [0], type: "Uint8Array", compression: "brotli", size: 10 })).toBe(false);
    expect(ok({ path: [0], type: "Uint8Array", compression: "gzip", size: 2 ** 30 + 1 })).toBe(false);
  });
});
