/**
 * Results passed along a flow, as bytes: the router keeps every result exactly as its dealer
 * encoded it, so a step's input, a group's array and a settled group's entries are spliced from
 * those bytes, never parsed and encoded again (a 10,000-member group costs one copy). Pure.
 */
import { errorFromWire, type FlowFailure } from "../../protocol/index.ts";
import type { TaskError } from "../../store/task-store.ts";

const encoder = new TextEncoder();
const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;
const OK_HEAD = encoder.encode('{"ok":true,"value":');
const FAILED_HEAD = encoder.encode('{"ok":false,"error":');
const END = encoder.encode("}");
export const JSON_NULL = encoder.encode("null");

/** `args` (a compact JSON array, as the router encodes a flow step's arguments) with `input` first. */
export function prependArgument(input: Uint8Array, args: Uint8Array): Uint8Array {
  const empty = args.length === 2 && args[0] === OPEN && args[1] === CLOSE;
  const out = new Uint8Array(input.length + (empty ? 2 : args.length + 1));
  out[0] = OPEN;
  out.set(input, 1);
  if (empty) {
    out[input.length + 1] = CLOSE;
  } else {
    out[input.length + 1] = COMMA;
    out.set(args.subarray(1), input.length + 2);
  }
  return out;
}

/** A JSON array of the given JSON values, in order. */
export function joinArray(values: readonly Uint8Array[]): Uint8Array {
  let size = 2 + Math.max(0, values.length - 1);
  for (const value of values) size += value.length;
  const out = new Uint8Array(size);
  let at = 0;
  out[at++] = OPEN;
  values.forEach((value, i) => {
    if (i > 0) out[at++] = COMMA;
    out.set(value, at);
    at += value.length;
  });
  out[at] = CLOSE;
  return out;
}

/** A settled group's entry: `{ ok: true, value }` or `{ ok: false, error }`. */
export function settledEntry(ok: boolean, json: Uint8Array): Uint8Array {
  const head = ok ? OK_HEAD : FAILED_HEAD;
  const out = new Uint8Array(head.length + json.length + END.length);
  out.set(head, 0);
  out.set(json, head.length);
  out.set(END, head.length + json.length);
  return out;
}

/**
 * A task's error as a failure callback sees it: its code, a name (the original exception's for
 * an error a method threw, else the VoidRail class's) and its message.
 */
export function failureOf(error: TaskError): FlowFailure {
  const remoteName = (error.data as { name?: unknown } | undefined)?.name;
  const name = error.code === "REMOTE_ERROR" && typeof remoteName === "string" ? remoteName : errorFromWire(error).name;
  return { code: error.code, name, message: error.message };
}

export function failureJson(error: TaskError): Uint8Array {
  return encoder.encode(JSON.stringify(failureOf(error)));
}
