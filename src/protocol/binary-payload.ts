/**
 * Binary values inside a JSON payload, as their own frames (the groundwork of issue #12; not yet
 * wired into the call path): `encodeBinaryPayload` takes any JSON-like value that may hold
 * `Uint8Array`, `Buffer`, `ArrayBuffer`, `DataView` or typed arrays at any depth, and gives the
 * JSON text with `null` where each binary value was, the list of those places (`slots`: path and
 * type, for the header), and the bytes of each as a frame, in slot order, without copying them.
 * `decodeBinaryPayload` puts them back, each as its own type (a `Buffer` comes back as a
 * `Uint8Array`). Pure: no I/O. Paths, not marker objects, say where the bytes go, so no user
 * value can be mistaken for one.
 */
import * as v from "valibot";
import { ProtocolError, ProtocolFailure, ValidationError } from "./errors.ts";

/** The binary types a payload may carry, by the name that travels in the header. */
const VIEW_TYPES = {
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
export type BinaryType = keyof typeof VIEW_TYPES | "DataView" | "ArrayBuffer";
export const BINARY_TYPES = [...Object.keys(VIEW_TYPES), "DataView", "ArrayBuffer"] as readonly BinaryType[];

/** Most binary values in one payload, and deepest path to one. */
export const MAX_BINARY_SLOTS = 1024;
export const MAX_BINARY_PATH_DEPTH = 32;

/** Where one binary value sits in the JSON value, and what it was. */
export interface BinarySlot {
  /** Keys and array indices from the root. */
  path: (string | number)[];
  type: BinaryType;
}

export const BinarySlotsSchema = v.pipe(
  v.array(
    v.object({
      path: v.pipe(
        v.array(v.union([v.pipe(v.string(), v.maxLength(1024)), v.pipe(v.number(), v.safeInteger(), v.minValue(0))])),
        v.maxLength(MAX_BINARY_PATH_DEPTH),
      ),
      type: v.picklist(BINARY_TYPES),
    }),
  ),
  v.maxLength(MAX_BINARY_SLOTS),
);

export interface EncodedBinaryPayload {
  /** UTF-8 JSON with `null` at every slot. */
  json: Uint8Array;
  slots: BinarySlot[];
  /** The bytes of each slot, in slot order; views of the caller's memory, not copies. */
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
 * JSON.stringify; the binaries are never copied. Throws ValidationError for more than
 * MAX_BINARY_SLOTS binaries, a path deeper than MAX_BINARY_PATH_DEPTH, or a value JSON cannot hold.
 */
export function encodeBinaryPayload(value: unknown, what = "payload"): EncodedBinaryPayload {
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
  return { json: encoder.encode(text ?? "null"), slots, frames };
}

/** The frame's bytes as `type`, aligned for its element size (copied only when they are not). */
function restore(bytes: Uint8Array, type: BinaryType, index: number): unknown {
  if (type === "ArrayBuffer") return bytes.slice().buffer;
  if (type === "DataView") return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const View = VIEW_TYPES[type as keyof typeof VIEW_TYPES];
  const size = View.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) {
    throw new ProtocolError(`binary frame ${index} has ${bytes.byteLength} bytes, not a whole number of ${type} elements`, {
      data: { reason: ProtocolFailure.SCHEMA },
    });
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
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
    parent[key] = restore(frames[index], slot.type, index);
  });
  return holder.root;
}
