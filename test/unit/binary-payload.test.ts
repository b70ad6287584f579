/**
 * Binary values as their own frames beside the JSON (src/protocol/binary-payload.ts): every type
 * round-trips at any depth as itself, nothing is copied on the way out, misaligned frames still
 * decode, and a payload whose slots do not fit its JSON or frames is a ProtocolError.
 *
 *   ./node_modules/.bin/bun test test/unit/binary-payload.test.ts
 */
import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import {
  BinarySlotsSchema,
  containsBinary,
  decodeBinaryPayload,
  encodeBinaryPayload,
  MAX_BINARY_SLOTS,
} from "../../src/protocol/binary-payload.ts";
import { ProtocolError, ValidationError } from "../../src/protocol/index.ts";

const roundTrip = (value: unknown) => {
  const { json, slots, frames } = encodeBinaryPayload(value);
  expect(v.safeParse(BinarySlotsSchema, slots).success).toBe(true);
  // Frames travel as separate buffers: decode from copies, as a receiver would get them.
  return decodeBinaryPayload(
    json.slice(),
    slots,
    frames.map((frame) => frame.slice()),
  );
};

describe("binary payloads", () => {
  test("every binary type comes back as itself, with its contents, at any depth", () => {
    const value = {
      image: new Uint8Array([0, 1, 2, 255]),
      nested: { deeper: [new Float32Array([1.5, -2.25]), { int16: new Int16Array([-1, 32767]) }] },
      list: [new Float64Array([Math.PI]), new BigInt64Array([-5n]), new Uint8ClampedArray([9])],
      raw: new Uint8Array([7, 8]).buffer,
      view: new DataView(new Uint8Array([1, 2, 3]).buffer),
      text: "kept",
      n: 42,
      none: null,
    };
    const back = roundTrip(value) as typeof value;
    expect(back.image).toBeInstanceOf(Uint8Array);
    expect([...back.image]).toEqual([0, 1, 2, 255]);
    expect(back.nested.deeper[0]).toBeInstanceOf(Float32Array);
    expect([...(back.nested.deeper[0] as Float32Array)]).toEqual([1.5, -2.25]);
    expect([...(back.nested.deeper[1] as { int16: Int16Array }).int16]).toEqual([-1, 32767]);
    expect(back.list[0]).toBeInstanceOf(Float64Array);
    expect([...(back.list[1] as BigInt64Array)]).toEqual([-5n]);
    expect(back.list[2]).toBeInstanceOf(Uint8ClampedArray);
    expect(back.raw).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(back.raw)]).toEqual([7, 8]);
    expect(back.view).toBeInstanceOf(DataView);
    expect(back.view.getUint8(2)).toBe(3);
    expect([back.text, back.n, back.none]).toEqual(["kept", 42, null]);
  });

  test("a Buffer comes back as a Uint8Array; a binary root value works too", () => {
    const back = roundTrip(Buffer.from("hello"));
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(back as Uint8Array).toString()).toBe("hello");
  });

  test("the bytes are not copied on the way out: each frame is a view of the caller's memory", () => {
    const big = new Float32Array(1024);
    const part = new Uint8Array(big.buffer, 16, 64);
    const { frames } = encodeBinaryPayload([big, part]);
    expect(frames[0].buffer).toBe(big.buffer);
    expect(frames[1].buffer).toBe(big.buffer);
    expect([frames[1].byteOffset, frames[1].byteLength]).toEqual([16, 64]);
  });

  test("frames that are Buffers (as sockets deliver them) decode too, misaligned ones and ArrayBuffers included", () => {
    const { json, slots } = encodeBinaryPayload([new Float32Array([2.5]), new Uint8Array([5, 6]).buffer]);
    const pool = Buffer.alloc(64);
    pool.set(new Uint8Array(new Float32Array([2.5]).buffer), 3);
    pool.set([5, 6], 9);
    const back = decodeBinaryPayload(json, slots, [pool.subarray(3, 7), pool.subarray(9, 11)]) as [Float32Array, ArrayBuffer];
    expect([...back[0]]).toEqual([2.5]);
    expect(back[1].byteLength).toBe(2);
    expect([...new Uint8Array(back[1])]).toEqual([5, 6]);
  });

  test("a misaligned frame still decodes (copied to an aligned buffer)", () => {
    const { json, slots } = encodeBinaryPayload([new Float64Array([1, 2])]);
    const padded = new Uint8Array(17);
    padded.set(new Uint8Array(new Float64Array([1, 2]).buffer), 1);
    const back = decodeBinaryPayload(json, slots, [padded.subarray(1)]) as Float64Array[];
    expect([...back[0]]).toEqual([1, 2]);
  });

  test("containsBinary finds a binary at any depth, and says false for plain JSON and dates", () => {
    expect(containsBinary([1, "a", { b: [null, { c: new Uint16Array(1) }] }])).toBe(true);
    expect(containsBinary({ a: [1, 2], b: { c: "x" }, d: new Date(0) })).toBe(false);
    expect(containsBinary(new ArrayBuffer(1))).toBe(true);
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(containsBinary(cyclic)).toBe(true); // the encoder then reports the cycle
  });

  test("a value without binaries is plain JSON; user objects that look like markers are left alone", () => {
    const value = { $bytes: [0, "Uint8Array"], $bin: 0, when: new Date(0) };
    const { json, slots, frames } = encodeBinaryPayload(value);
    expect(new TextDecoder().decode(json)).toBe(JSON.stringify(value));
    expect([slots, frames]).toEqual([[], []]);
    expect(decodeBinaryPayload(json, slots, frames)).toEqual(JSON.parse(JSON.stringify(value)));
  });

  test("bad input on the way out is a ValidationError: cycles, too many binaries", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeBinaryPayload(cyclic)).toThrow(ValidationError);
    const many = Array.from({ length: MAX_BINARY_SLOTS + 1 }, () => new Uint8Array(1));
    expect(() => encodeBinaryPayload(many)).toThrow(ValidationError);
  });

  test("slots that do not fit the JSON or the frames are a ProtocolError", () => {
    const { json, slots, frames } = encodeBinaryPayload({ a: new Uint8Array([1]), b: [new Int32Array([1])] });
    expect(() => decodeBinaryPayload(json, slots, frames.slice(1))).toThrow(ProtocolError);
    expect(() => decodeBinaryPayload(json, [{ path: ["missing"], type: "Uint8Array" }, slots[1]], frames)).toThrow(ProtocolError);
    const notNull = new TextEncoder().encode('{"a":1,"b":[null]}');
    expect(() => decodeBinaryPayload(notNull, slots, frames)).toThrow(ProtocolError);
    expect(() => decodeBinaryPayload(json, slots, [frames[0], new Uint8Array(3)])).toThrow(ProtocolError);
    expect(() => decodeBinaryPayload(new Uint8Array([0xff]), [], [])).toThrow(ProtocolError);
    expect(v.safeParse(BinarySlotsSchema, [{ path: [-1], type: "Uint8Array" }]).success).toBe(false);
    expect(v.safeParse(BinarySlotsSchema, [{ path: ["a"], type: "Float16Array" }]).success).toBe(false);
  });
});
