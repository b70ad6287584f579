/**
 * Binary values inside a JSON payload, as their own frames (protocol revision 3, PROTOCOL.md §5.1;
 * the client and dealer use `encodeValue` / `decodeValue`): `encodeBinaryPayload` takes any JSON-like value that may hold
 * `Uint8Array`, `Buffer`, `ArrayBuffer`, `DataView` or typed arrays at any depth, and gives the
 * JSON text with `null` where each binary value was, the list of those places (`slots`: path and
 * type, for the header), and the bytes of each as a frame, in slot order, without copying them.
 * `decodeBinaryPayload` puts them back, each as its own type (a `Buffer` comes back as a
 * `Uint8Array`). Pure: no I/O. Paths, not marker objects, say where the bytes go, so no user
 * value can be mistaken for one.
 */
import { decodeJson, encodeJson } from "./codec.ts";
import { type CompressionPlan, compressFrame, decompressFrame } from "./compression.ts";
import { ProtocolError, ProtocolFailure, ValidationError } from "./errors.ts";

import {
  BINARY_VIEW_TYPES as VIEW_TYPES,
  type BinarySlot,
  type BinaryType,
  MAX_BINARY_PATH_DEPTH,
  MAX_BINARY_SLOTS,
} from "./binary-slots.ts";

export {
  type BinarySlot,
  BinarySlotsSchema,
  type BinaryType,
  BINARY_TYPES,
  MAX_BINARY_PATH_DEPTH,
  MAX_BINARY_SLOTS,
} from "./binary-slots.ts";

export interface EncodedBinaryPayload {
  /** UTF-8 JSON with `null` at every slot. */
  json: Uint8Array;
  slots: BinarySlot[];
  /** The bytes of each slot, in slot order; views of the caller's memory, not copies (unless compressed). */
  frames: Uint8Array[];
}

function binaryTypeOf(value: object): BinaryType | undefined {
  if (value instanceof ArrayBuffer) return "ArrayBuffer";
  if (!ArrayBuffer.isView(value)) return undefined;
  if (value instanceof DataView) return "DataView";
  // A Buffer is a Uint8Array subclass: it travels (and comes back) as Uint8Array.
  for (const [name, View] of Object.entries(VIEW_TYPES)) if (value instanceof View) return name as BinaryType;
  return undefined;
}

function bytesOf(value: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

const encoder = new TextEncoder();

/**
 * Splits `value` into JSON and binary frames. A value without binaries costs one walk more than
 * JSON.stringify; the binaries are never copied (with `compress`, the frames worth it are
 * compressed: compression.ts). Throws ValidationError for more than MAX_BINARY_SLOTS binaries, a
 * path deeper than MAX_BINARY_PATH_DEPTH, or a value JSON cannot hold.
 */
export function encodeBinaryPayload(value: unknown, what = "payload", compress?: CompressionPlan): EncodedBinaryPayload {
  const slots: BinarySlot[] = [];
  const frames: Uint8Array[] = [];
  const path: (string | number)[] = [];
  const seen = new Set<object>();
  const walk = (node: unknown): unknown => {
    if (node === null || typeof node !== "object") return node;
    const type = binaryTypeOf(node);
    if (type !== undefined) {
      if (slots.length >= MAX_BINARY_SLOTS) {
        throw new ValidationError(`${what} holds more than ${MAX_BINARY_SLOTS} binary values`, { data: { path: what } });
      }
      if (path.length > MAX_BINARY_PATH_DEPTH) {
        throw new ValidationError(`${what} has a binary value nested deeper than ${MAX_BINARY_PATH_DEPTH}`, { data: { path: what } });
      }
      slots.push({ path: [...path], type });
      frames.push(bytesOf(node as ArrayBuffer | ArrayBufferView));
      return null;
    }
    if (seen.has(node)) throw new ValidationError(`${what} refers to itself and cannot be sent`, { data: { path: what } });
    seen.add(node);
    const toJSON = (node as { toJSON?: unknown }).toJSON;
    let result: unknown;
    if (typeof toJSON === "function") {
      // Dates and other values with their own JSON form keep it.
      result = node;
    } else if (Array.isArray(node)) {
      result = node.map((item, index) => {
        path.push(index);
        const out = walk(item);
        path.pop();
        return out;
      });
    } else {
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(node)) {
        path.push(key);
        copy[key] = walk(item);
        path.pop();
      }
      result = copy;
    }
    seen.delete(node);
    return result;
  };
  const tree = walk(value);
  let text: string | undefined;
  try {
    text = JSON.stringify(tree === undefined ? null : tree);
  } catch (error) {
    throw new ValidationError(`${what} cannot be encoded as JSON: ${(error as Error).message}`, { data: { path: what }, cause: error });
  }
  if (compress !== undefined) {
    for (let i = 0; i < frames.length; i++) {
      const packed = compressFrame(frames[i], compress);
      if (packed === undefined) continue;
      slots[i].compression = compress.codec;
      slots[i].size = frames[i].byteLength;
      frames[i] = packed;
    }
  }
  return { json: encoder.encode(text ?? "null"), slots, frames };
}

/** The frame's bytes as `type`, aligned for its element size (copied only when they are not). */
function restore(bytes: Uint8Array, type: BinaryType, index: number): unknown {
  // A copy into a buffer of its own. (Not `bytes.slice()`: on a received Buffer that is a view.)
  const copy = () => Uint8Array.prototype.slice.call(bytes) as Uint8Array;
  if (type === "ArrayBuffer") return copy().buffer;
  if (type === "DataView") return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const View = VIEW_TYPES[type as keyof typeof VIEW_TYPES];
  const size = View.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) {
    throw new ProtocolError(`binary frame ${index} has ${bytes.byteLength} bytes, not a whole number of ${type} elements`, {
      data: { reason: ProtocolFailure.SCHEMA },
    });
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : copy();
  return new View(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.byteLength / size);
}

/**
 * Rebuilds a value from its JSON and binary frames. A slot whose path does not lead to a `null`
 * in the JSON, or a frame count that does not match the slots, is a ProtocolError.
 */
export function decodeBinaryPayload(json: Uint8Array, slots: readonly BinarySlot[], frames: readonly Uint8Array[]): unknown {
  if (slots.length !== frames.length) {
    throw new ProtocolError(`${slots.length} binary slot(s) but ${frames.length} binary frame(s)`, {
      data: { reason: ProtocolFailure.FRAME_COUNT },
    });
  }
  let root: unknown;
  try {
    root = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (error) {
    throw new ProtocolError(`payload is not UTF-8 JSON: ${(error as Error).message}`, { data: { reason: ProtocolFailure.BAD_JSON } });
  }
  const holder = { root };
  slots.forEach((slot, index) => {
    let parent: Record<string | number, unknown> = holder as Record<string, unknown>;
    let key: string | number = "root";
    for (const step of slot.path) {
      const next = parent[key];
      const fits = typeof step === "number" ? Array.isArray(next) : next !== null && typeof next === "object" && !Array.isArray(next);
      if (!fits || !Object.hasOwn(next as object, step)) {
        throw new ProtocolError(`binary slot ${index} points at ${JSON.stringify(slot.path)}, which the JSON does not have`, {
          data: { reason: ProtocolFailure.SCHEMA },
        });
      }
      parent = next as Record<string | number, unknown>;
      key = step;
    }
    if (parent[key] !== null) {
      throw new ProtocolError(`binary slot ${index} points at a value that is not null`, { data: { reason: ProtocolFailure.SCHEMA } });
    }
    const compression = slot.compression;
    const bytes = compression === undefined ? frames[index] : decompressFrame(frames[index], compression, slot.size ?? 0, index);
    parent[key] = restore(bytes, slot.type, index);
  });
  return holder.root;
}

/**
 * Whether `value` holds a binary value anywhere. On the path of every call: no allocation, and it
 * stops at the first binary. Past 64 levels it answers true, so that the full encoder (which
 * reports cycles) has the last word.
 */
export function containsBinary(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== "object") return false;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return true;
  if (depth > 64) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (item !== null && typeof item === "object" && containsBinary(item, depth + 1)) return true;
    }
    return false;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return false;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const item = (value as Record<string, unknown>)[key];
    if (item !== null && typeof item === "object" && containsBinary(item, depth + 1)) return true;
  }
  return false;
}

/**
 * A payload value to send: plain JSON when it holds no binary value (the common case, as fast as
 * before), else JSON with its binary frames. Never throws: a value that cannot be sent is an error.
 */
export function encodeValue(
  value: unknown,
  what: "args" | "result" | "chunk",
  compress?: CompressionPlan,
): { ok: true; json: Uint8Array; binary?: EncodedBinaryPayload } | { ok: false; error: ValidationError } {
  if (!containsBinary(value)) {
    const plain = encodeJson(value === undefined ? null : value, what);
    return plain.ok ? { ok: true, json: plain.value } : plain;
  }
  try {
    const binary = encodeBinaryPayload(value, what, compress);
    return { ok: true, json: binary.json, binary };
  } catch (error) {
    return { ok: false, error: error as ValidationError };
  }
}

/** A received payload value: its JSON, with the binary frames put back where `slots` says. */
export function decodeValue(
  json: Uint8Array,
  slots: readonly BinarySlot[] | undefined,
  frames: readonly Uint8Array[] | undefined,
): { ok: true; value: unknown } | { ok: false; error: ProtocolError } {
  if (slots === undefined || slots.length === 0)
    return decodeJson(json) as { ok: true; value: unknown } | { ok: false; error: ProtocolError };
  try {
    return { ok: true, value: decodeBinaryPayload(json, slots, frames ?? []) };
  } catch (error) {
    return { ok: false, error: error as ProtocolError };
  }
}
