/**
 * VoidRail codec: messages to frames and back. Pure; no I/O.
 *
 * This runs once per message in each direction on every peer, so it avoids copies: the protocol
 * id and kind frames are encoded once and shared, a payload frame is passed through untouched,
 * and decoding returns the payload as the very frame it was given.
 */
import * as v from "valibot";
import { FrameParts } from "../zmtp/index.ts";
import { ProtocolError, ProtocolFailure, ValidationError, validationErrorFromIssues } from "./errors.ts";
import type { ProtocolErrorData } from "./errors.ts";
import {
  type HeaderOf,
  type InboundMessage,
  KINDS,
  type Kind,
  Limits,
  PAYLOAD_KINDS,
  PROTOCOL_ID,
  type PayloadKind,
  RULES,
  type Receiver,
  type RequestId,
} from "./messages.ts";

const utf8Encoder = new TextEncoder();
// fatal: bad UTF-8 must fail, not turn into U+FFFD. ignoreBOM: keep a BOM so JSON.parse rejects it.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const PROTOCOL_ID_FRAME: Uint8Array = utf8Encoder.encode(PROTOCOL_ID);
const KIND_FRAMES: ReadonlyMap<Kind, Uint8Array> = new Map(KINDS.map((kind) => [kind, utf8Encoder.encode(kind)]));
const KINDS_BY_LENGTH: ReadonlyArray<ReadonlyArray<readonly [Kind, Uint8Array]> | undefined> = (() => {
  const table: Array<Array<readonly [Kind, Uint8Array]>> = [];
  for (const [kind, bytes] of KIND_FRAMES) (table[bytes.byteLength] ??= []).push([kind, bytes]);
  return table;
})();
const PAYLOAD_KIND_SET: ReadonlySet<Kind> = new Set<Kind>(PAYLOAD_KINDS);
const PARSE_CONFIG = { abortEarly: true } as const;

/**
 * Encodes a message as the frames a DEALER-side peer sends (the ROUTER socket adds or strips the
 * routing id frame; that is not this layer's business).
 *
 * The header is not validated here (senders are trusted code; receivers validate). Frames 0 and 1
 * are shared, cached buffers and the payload frame is the caller's buffer: do not mutate any of
 * them after sending.
 *
 * Throws (programming errors only): TypeError for an unknown kind, a payload missing from (or
 * given to) the wrong kind, or a header JSON cannot encode; RangeError for a header over the limit.
 *
 * @example
 * socket.send(encodeMessage("REQUEST", { id: 7, method: "Echo.echo" }, encodeJsonOrThrow(["hi"])));
 */
export function encodeMessage<K extends Kind>(
  kind: K,
  header: HeaderOf<K>,
  ...payload: K extends PayloadKind ? [payload: Uint8Array, binary?: readonly Uint8Array[]] : []
): Uint8Array[] {
  const kindFrame = KIND_FRAMES.get(kind);
  if (kindFrame === undefined) throw new TypeError(`encodeMessage: unknown kind ${JSON.stringify(kind)}`);
  const body = payload[0] as Uint8Array | undefined;
  const wantsPayload = PAYLOAD_KIND_SET.has(kind);
  if (wantsPayload !== (body !== undefined)) {
    throw new TypeError(`encodeMessage: ${kind} ${wantsPayload ? "needs" : "takes no"} payload frame`);
  }
  const text = JSON.stringify(header);
  if (text === undefined || text[0] !== "{") throw new TypeError(`encodeMessage: ${kind} header must be an object`);
  const headerFrame = utf8Encoder.encode(text);
  const limit = kind === "HELLO" ? Limits.MAX_HELLO_HEADER_BYTES : Limits.MAX_HEADER_BYTES;
  if (headerFrame.byteLength > limit) {
    throw new RangeError(`encodeMessage: ${kind} header is ${headerFrame.byteLength} bytes, limit ${limit}`);
  }
  if (body === undefined) return [PROTOCOL_ID_FRAME, kindFrame, headerFrame];
  const binary = payload[1] as readonly Uint8Array[] | undefined;
  if (binary === undefined || binary.length === 0) return [PROTOCOL_ID_FRAME, kindFrame, headerFrame, body];
  return [PROTOCOL_ID_FRAME, kindFrame, headerFrame, body, ...binary];
}

/** A message that failed to decode. `kind` and `id` are set when they could be read, so the
 *  receiver can still answer `ERROR { id }` for a request with a bad header. */
export interface DecodeFailure {
  ok: false;
  error: ProtocolError;
  kind?: Kind;
  id?: RequestId;
}

export type DecodeResult<R extends Receiver> = ({ ok: true } & InboundMessage<R>) | DecodeFailure;

function fail(message: string, data: ProtocolErrorData, kind?: Kind, id?: RequestId): DecodeFailure {
  const failure: DecodeFailure = { ok: false, error: new ProtocolError(message, { data }) };
  if (kind !== undefined) failure.kind = kind;
  if (id !== undefined) failure.id = id;
  return failure;
}

/** Printable form of untrusted bytes for error messages: quoted ASCII, else hex; at most 32 bytes. */
function showBytes(bytes: Uint8Array): string {
  const shown = bytes.subarray(0, 32);
  const more = bytes.byteLength > shown.byteLength ? "…" : "";
  let printable = true;
  for (const byte of shown) if (byte < 0x20 || byte > 0x7e) printable = false;
  if (printable) return `${JSON.stringify(String.fromCharCode(...shown))}${more}`;
  return `0x${Array.from(shown, (byte) => byte.toString(16).padStart(2, "0")).join("")}${more}`;
}

function isProtocolId(frame: Uint8Array): boolean {
  return (
    frame.byteLength === 4 &&
    frame[0] === PROTOCOL_ID_FRAME[0] &&
    frame[1] === PROTOCOL_ID_FRAME[1] &&
    frame[2] === PROTOCOL_ID_FRAME[2] &&
    frame[3] === PROTOCOL_ID_FRAME[3]
  );
}

function kindOf(frame: Uint8Array): Kind | undefined {
  const length = frame.byteLength;
  if (length > Limits.MAX_KIND_LENGTH) return undefined;
  // Compare bytes against the few kinds of this length: building a string to look up costs more.
  const candidates = KINDS_BY_LENGTH[length];
  if (candidates === undefined) return undefined;
  for (const [kind, bytes] of candidates) {
    let i = 0;
    while (i < length && frame[i] === bytes[i]) i++;
    if (i === length) return kind;
  }
  return undefined;
}

function readId(header: Record<string, unknown>): RequestId | undefined {
  const id = header.id;
  return typeof id === "number" && Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

/**
 * Decodes and validates the frames of one message as `receiver` sees them ("router" for what
 * clients and dealers send, "dealer" and "client" for what the router sends them). The routing id
 * frame a ROUTER socket prepends must already be removed.
 *
 * Never throws on any frames: every failure comes back as `{ ok: false, error: ProtocolError }`
 * with `error.data.reason` saying what is wrong (see `ProtocolFailure`). On success the payload,
 * for kinds that have one, is the original frame, unparsed.
 *
 * @example
 * const msg = decodeMessage(frames, "router");
 * if (!msg.ok) return reply(encodeMessage("ERROR", { id: msg.id, ...errorToWire(msg.error) }));
 * if (msg.kind === "REQUEST") dispatch(msg.header.method, msg.payload);
 */
export function decodeMessage<R extends Receiver>(frames: readonly Uint8Array[], receiver: R): DecodeResult<R> {
  const rules = Object.hasOwn(RULES, receiver) ? RULES[receiver] : undefined;
  if (rules === undefined) throw new TypeError(`decodeMessage: unknown receiver ${JSON.stringify(receiver)}`);
  const count = frames.length;
  for (let i = 0; i < count; i++) {
    // A relay's binary frames may be FrameParts (SocketOptions.keepPartsAbove): it passes them on unread.
    if (!(frames[i] instanceof Uint8Array) && !(i >= 4 && frames[i] instanceof FrameParts))
      return fail(`frame ${i} is not a byte array`, { reason: ProtocolFailure.BAD_FRAME, frame: i });
  }
  if (count === 0) return fail("empty message: expected 3 or 4 frames", { reason: ProtocolFailure.FRAME_COUNT });
  const idFrame = frames[0] as Uint8Array;
  if (!isProtocolId(idFrame)) {
    return fail(`frame 0: expected protocol id "${PROTOCOL_ID}", got ${showBytes(idFrame)}`, {
      reason: ProtocolFailure.PROTOCOL_ID,
      frame: 0,
    });
  }
  if (count === 1) return fail("message has no kind frame: expected 3 or 4 frames, got 1", { reason: ProtocolFailure.FRAME_COUNT });
  const kindFrame = frames[1] as Uint8Array;
  const kind = kindOf(kindFrame);
  if (kind === undefined) {
    return fail(`frame 1: unknown message kind ${showBytes(kindFrame)}`, { reason: ProtocolFailure.UNKNOWN_KIND, frame: 1 });
  }
  const rule = rules.get(kind);
  if (rule === undefined) {
    return fail(
      `frame 1: a ${receiver} does not accept ${kind} messages`,
      { reason: ProtocolFailure.UNEXPECTED_KIND, frame: 1, kind },
      kind,
    );
  }
  // A payload may be followed by binary frames (header.binary says how many: checked below).
  const expected = rule.hasPayload ? 4 : 3;
  if (rule.hasPayload ? count < expected : count !== expected) {
    return fail(
      `${kind} has ${expected} frames${rule.hasPayload ? " (with payload)" : ""}, got ${count}`,
      { reason: ProtocolFailure.FRAME_COUNT, kind },
      kind,
    );
  }
  const headerFrame = frames[2] as Uint8Array;
  if (headerFrame.byteLength > rule.maxHeaderBytes) {
    return fail(
      `frame 2: ${kind} header is ${headerFrame.byteLength} bytes, limit ${rule.maxHeaderBytes}`,
      { reason: ProtocolFailure.HEADER_TOO_LARGE, frame: 2, kind },
      kind,
    );
  }
  let text: string;
  try {
    text = utf8Decoder.decode(headerFrame);
  } catch {
    return fail(`frame 2: ${kind} header is not valid UTF-8`, { reason: ProtocolFailure.BAD_UTF8, frame: 2, kind }, kind);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail(
      `frame 2: ${kind} header is not JSON: ${(err as Error).message}`,
      { reason: ProtocolFailure.BAD_JSON, frame: 2, kind },
      kind,
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    const got = parsed === null ? "null" : Array.isArray(parsed) ? "an array" : typeof parsed;
    return fail(`frame 2: ${kind} header must be a JSON object, got ${got}`, { reason: ProtocolFailure.NOT_OBJECT, frame: 2, kind }, kind);
  }
  const result = v.safeParse(rule.schema, parsed, PARSE_CONFIG);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue) ?? "";
    const field = path === "" ? "header" : `header.${path}`;
    return fail(
      `frame 2: ${kind} ${field}: ${issue.message}`,
      { reason: ProtocolFailure.SCHEMA, frame: 2, kind, path },
      kind,
      readId(parsed as Record<string, unknown>),
    );
  }
  if (!rule.hasPayload) return { ok: true, kind, header: result.output, payload: undefined } as DecodeResult<R>;
  const slots = (result.output as { binary?: readonly unknown[] }).binary?.length ?? 0;
  if (count !== 4 + slots) {
    return fail(
      `${kind} has ${4 + slots} frames (payload and ${slots} binary), got ${count}`,
      { reason: ProtocolFailure.FRAME_COUNT, kind },
      kind,
      readId(parsed as Record<string, unknown>),
    );
  }
  const payload = frames[3];
  if (slots === 0) return { ok: true, kind, header: result.output, payload } as DecodeResult<R>;
  return { ok: true, kind, header: result.output, payload, binary: frames.slice(4) as Uint8Array[] } as DecodeResult<R>;
}

/** Outcome of a JSON helper: a value, or the error to report. Never an exception. */
export type JsonResult<T, E extends Error> = { ok: true; value: T } | { ok: false; error: E };

/**
 * Encodes a payload value as UTF-8 JSON. A top-level value JSON cannot represent (`undefined`,
 * a function) encodes as `null`, as it would inside an array. Values that make JSON.stringify
 * throw (BigInt, cycles) give a ValidationError whose path is `path`.
 *
 * @example
 * const encoded = encodeJson(await method(...args), "result");
 */
export function encodeJson(value: unknown, path = ""): JsonResult<Uint8Array, ValidationError> {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    const where = path === "" ? "value" : path;
    return {
      ok: false,
      error: new ValidationError(`${where} is not JSON-serialisable: ${(err as Error).message}`, { cause: err, data: { path } }),
    };
  }
  return { ok: true, value: utf8Encoder.encode(text ?? "null") };
}

/** Like `encodeJson`, for values the caller built itself (argument arrays, monitoring data); throws the ValidationError. */
export function encodeJsonOrThrow(value: unknown): Uint8Array {
  const result = encodeJson(value);
  if (!result.ok) throw result.error;
  return result.value;
}

/**
 * Parses a payload frame. Bad UTF-8 or bad JSON gives a ProtocolError (reason BAD_UTF8 or
 * BAD_JSON, frame 3). With a valibot `schema`, the value is also validated and a mismatch gives a
 * ValidationError naming the field. Never throws.
 *
 * @example
 * const info = decodeJson(msg.payload, RouterInfoSchema);
 */
export function decodeJson(bytes: Uint8Array): JsonResult<unknown, ProtocolError>;
export function decodeJson<S extends v.GenericSchema>(
  bytes: Uint8Array,
  schema: S,
): JsonResult<v.InferOutput<S>, ProtocolError | ValidationError>;
export function decodeJson(bytes: Uint8Array, schema?: v.GenericSchema): JsonResult<unknown, ProtocolError | ValidationError> {
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch {
    return { ok: false, error: new ProtocolError("payload is not valid UTF-8", { data: { reason: ProtocolFailure.BAD_UTF8, frame: 3 } }) };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      error: new ProtocolError(`payload is not JSON: ${(err as Error).message}`, { data: { reason: ProtocolFailure.BAD_JSON, frame: 3 } }),
    };
  }
  if (schema === undefined) return { ok: true, value };
  const result = v.safeParse(schema, value);
  return result.success ? { ok: true, value: result.output } : { ok: false, error: validationErrorFromIssues(result.issues) };
}

/**
 * Parses a REQUEST payload: a JSON array of positional arguments (a single object argument is
 * `[obj]`). Anything else is a ProtocolError (reason NOT_ARRAY, BAD_JSON or BAD_UTF8). Never throws.
 *
 * @example
 * const args = decodeArgs(msg.payload);
 * if (!args.ok) return replyError(msg.header.id, args.error);
 */
export function decodeArgs(bytes: Uint8Array): JsonResult<unknown[], ProtocolError> {
  const result = decodeJson(bytes);
  if (!result.ok) return result;
  if (!Array.isArray(result.value)) {
    const got = result.value === null ? "null" : typeof result.value;
    return {
      ok: false,
      error: new ProtocolError(`REQUEST payload must be a JSON array of arguments, got ${got}`, {
        data: { reason: ProtocolFailure.NOT_ARRAY, frame: 3 },
      }),
    };
  }
  return { ok: true, value: result.value };
}

/**
 * What the first frames of a message say, when the rest never arrived whole (a message over the
 * receiver's size bound, skipped as it came): its kind and request id, as far as they can be
 * read. Never throws; an unreadable part is left out.
 */
export function peekMessage(frames: readonly Uint8Array[]): { kind?: Kind; id?: RequestId } {
  if (frames.length < 2 || !isProtocolId(frames[0])) return {};
  const kind = kindOf(frames[1]);
  if (kind === undefined) return {};
  const header = frames[2];
  if (header === undefined || header.byteLength > Limits.MAX_HEADER_BYTES) return { kind };
  try {
    const parsed: unknown = JSON.parse(utf8Decoder.decode(header));
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return { kind };
    const id = readId(parsed as Record<string, unknown>);
    return id === undefined ? { kind } : { kind, id };
  } catch {
    return { kind };
  }
}
