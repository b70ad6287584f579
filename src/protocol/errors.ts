/**
 * Owns VoidRail's errors: one class per failure, each with a stable `code` that crosses the wire.
 *
 * On the wire an error is `{ code, message, data? }` (the ERROR header minus `id`). `errorToWire`
 * turns anything thrown into that shape, within the header limits; `errorFromWire` rebuilds the
 * class that owns the code, so `err instanceof TimeoutError` works on the calling side.
 */
import * as v from "valibot";
import { ERROR_CODE_PATTERN, Limits } from "./messages.ts";

/** Every code this implementation knows. The wire accepts any `ERROR_CODE_PATTERN` code. */
export const ErrorCode = {
  /** No registered dealer offers the method (and the request did not ask to wait). */
  NO_SUCH_METHOD: "NO_SUCH_METHOD",
  /** The router's queue for the method is full. */
  QUEUE_FULL: "QUEUE_FULL",
  /** The request's `timeoutMs` passed before a terminal reply. */
  TIMEOUT: "TIMEOUT",
  /** The request was cancelled (CANCEL, or the caller aborted). */
  CANCELLED: "CANCELLED",
  /** The dealer running the request disconnected, missed heartbeats or unregistered. */
  DEALER_LOST: "DEALER_LOST",
  /** HELLO carried a missing or wrong API key, or the connection is not authenticated. */
  AUTH_FAILED: "AUTH_FAILED",
  /** Arguments (or a result) did not satisfy a schema; `data.path` names the field. */
  VALIDATION_ERROR: "VALIDATION_ERROR",
  /** The service method threw; `data` carries the original name, message and stack. */
  REMOTE_ERROR: "REMOTE_ERROR",
  /** A peer broke the VoidRail protocol (bad frames, bad header, unexpected message). */
  PROTOCOL_ERROR: "PROTOCOL_ERROR",
  /** The router (or dealer) is stopping and takes no more work. */
  SHUTTING_DOWN: "SHUTTING_DOWN",
  /** The connection to the router went away with the request unanswered. */
  CONNECTION_LOST: "CONNECTION_LOST",
  /** No task has this id (never submitted, or its record was purged after its result TTL). */
  TASK_NOT_FOUND: "TASK_NOT_FOUND",
  /** No schedule has this name. */
  SCHEDULE_NOT_FOUND: "SCHEDULE_NOT_FOUND",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The code of a bare `VoidRailError` built without one. */
export const UNKNOWN_ERROR_CODE = "UNKNOWN_ERROR";

export interface VoidRailErrorOptions {
  /** The underlying error, kept locally; never sent over the wire. */
  cause?: unknown;
  /** JSON-serialisable details sent with the error (see each class for its shape). */
  data?: unknown;
  /**
   * Only for `VoidRailError` itself: the code of an error whose class this side does not know
   * (say, from a newer peer or a user-defined error). Subclasses always use their own code.
   */
  code?: string;
}

/**
 * Base of every VoidRail error. Branch on `code` (stable) or `instanceof` (same thing).
 *
 * Subclass it, with a `static code`, to send your own codes from a service method:
 * @example
 * class OutOfStockError extends VoidRailError { static override readonly code = "OUT_OF_STOCK"; override readonly name = "OutOfStockError"; }
 * // the caller receives VoidRailError { code: "OUT_OF_STOCK" }
 */
export class VoidRailError extends Error {
  static readonly code: string = UNKNOWN_ERROR_CODE;
  readonly code: string;
  readonly data: unknown;
  override readonly name: string = "VoidRailError";

  constructor(message: string, options: VoidRailErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const ctor = new.target as typeof VoidRailError;
    this.code = ctor === VoidRailError ? (options.code ?? UNKNOWN_ERROR_CODE) : ctor.code;
    this.data = options.data;
  }
}

/** NO_SUCH_METHOD. data: `{ method }`. */
export class NoSuchMethodError extends VoidRailError {
  static override readonly code = ErrorCode.NO_SUCH_METHOD;
  declare readonly code: typeof ErrorCode.NO_SUCH_METHOD;
  override readonly name = "NoSuchMethodError";
}

/** QUEUE_FULL. data: `{ method, queueLength }`. */
export class QueueFullError extends VoidRailError {
  static override readonly code = ErrorCode.QUEUE_FULL;
  declare readonly code: typeof ErrorCode.QUEUE_FULL;
  override readonly name = "QueueFullError";
}

/** TIMEOUT. data: `{ timeoutMs }`. */
export class TimeoutError extends VoidRailError {
  static override readonly code = ErrorCode.TIMEOUT;
  declare readonly code: typeof ErrorCode.TIMEOUT;
  override readonly name = "TimeoutError";
}

/** CANCELLED. */
export class CancelledError extends VoidRailError {
  static override readonly code = ErrorCode.CANCELLED;
  declare readonly code: typeof ErrorCode.CANCELLED;
  override readonly name = "CancelledError";
}

/** DEALER_LOST. data: `{ dealerId }`. */
export class DealerLostError extends VoidRailError {
  static override readonly code = ErrorCode.DEALER_LOST;
  declare readonly code: typeof ErrorCode.DEALER_LOST;
  override readonly name = "DealerLostError";
}

/** Why authentication failed; `AuthError.data.reason`. */
export const AuthFailure = {
  /** HELLO had no API key, or one the router does not accept for the role. */
  BAD_KEY: "BAD_KEY",
  /** A message other than HELLO on a connection that has not authenticated. */
  NOT_AUTHENTICATED: "NOT_AUTHENTICATED",
  /** Raised locally: the router refused the CURVE handshake (wrong server key, or a key it does not allow). */
  CURVE_REFUSED: "CURVE_REFUSED",
} as const;
export type AuthFailure = (typeof AuthFailure)[keyof typeof AuthFailure];

/** AUTH_FAILED. data: `{ reason: AuthFailure }`. */
export class AuthError extends VoidRailError {
  static override readonly code = ErrorCode.AUTH_FAILED;
  declare readonly code: typeof ErrorCode.AUTH_FAILED;
  override readonly name = "AuthError";
}

/** One failed check inside a VALIDATION_ERROR. */
export interface ValidationIssue {
  /** Dotted path of the field, e.g. `args.0.name`; `""` for the value itself. */
  path: string;
  message: string;
}

/** Shape of `ValidationError.data`. */
export interface ValidationErrorData {
  /** Dotted path of the (first) failing field. */
  path: string;
  /** Every failed check, first one first (at most 20). */
  issues?: ValidationIssue[];
}

/** VALIDATION_ERROR. data: `ValidationErrorData`, `path` naming the failing field. */
export class ValidationError extends VoidRailError {
  static override readonly code = ErrorCode.VALIDATION_ERROR;
  declare readonly code: typeof ErrorCode.VALIDATION_ERROR;
  override readonly name = "ValidationError";

  /** The failing field's path, if the data carries one. */
  get path(): string | undefined {
    const data = this.data as Partial<ValidationErrorData> | undefined;
    return typeof data?.path === "string" ? data.path : undefined;
  }
}

/** Shape of `RemoteError.data`: the exception as the service method threw it. */
export interface RemoteErrorData {
  name: string;
  message: string;
  stack?: string;
}

const RemoteErrorDataSchema = v.object({ name: v.string(), message: v.string(), stack: v.optional(v.string()) });

/** REMOTE_ERROR: the service method threw. data: `RemoteErrorData`. */
export class RemoteError extends VoidRailError {
  static override readonly code = ErrorCode.REMOTE_ERROR;
  declare readonly code: typeof ErrorCode.REMOTE_ERROR;
  override readonly name = "RemoteError";

  /** The original exception's name, message and stack; undefined if the peer sent other data. */
  get remote(): RemoteErrorData | undefined {
    const parsed = v.safeParse(RemoteErrorDataSchema, this.data);
    return parsed.success ? parsed.output : undefined;
  }
}

/**
 * What exactly broke the protocol; `ProtocolError.data.reason`. The codec reports the first group
 * (a message or payload that cannot be decoded); the router reports the second (a well-formed
 * message that is not allowed at this point of the conversation).
 */
export const ProtocolFailure = {
  /** Too few or too many frames for the kind. */
  FRAME_COUNT: "FRAME_COUNT",
  /** A frame is not bytes (only reachable from a broken caller). */
  BAD_FRAME: "BAD_FRAME",
  /** Frame 0 is not `VRP1`. */
  PROTOCOL_ID: "PROTOCOL_ID",
  /** Frame 1 names no known kind. */
  UNKNOWN_KIND: "UNKNOWN_KIND",
  /** A known kind that this side never receives (e.g. WELCOME sent to the router). */
  UNEXPECTED_KIND: "UNEXPECTED_KIND",
  /** The header frame exceeds the size limit for its kind. */
  HEADER_TOO_LARGE: "HEADER_TOO_LARGE",
  /** A header or payload frame is not valid UTF-8. */
  BAD_UTF8: "BAD_UTF8",
  /** A header or payload frame is not JSON. */
  BAD_JSON: "BAD_JSON",
  /** The header is JSON but not an object. */
  NOT_OBJECT: "NOT_OBJECT",
  /** A REQUEST payload is JSON but not an array. */
  NOT_ARRAY: "NOT_ARRAY",
  /** The header fails its kind's schema; `path` names the field. */
  SCHEMA: "SCHEMA",

  /** A second HELLO on a connection that already has a WELCOME. */
  ALREADY_HELLO: "ALREADY_HELLO",
  /** A dealer-only message (RESULT, CHUNK, END, ERROR, DRAIN, BYE) from a connection that is not a registered dealer. */
  NOT_REGISTERED: "NOT_REGISTERED",
  /** A client-only message (REQUEST, INFO, CANCEL, CREDIT) from a registered dealer. */
  WRONG_ROLE: "WRONG_ROLE",
  /** A REQUEST or INFO reusing the id of a request still outstanding on the connection. */
  DUPLICATE_ID: "DUPLICATE_ID",
  /** A dealer sent more CHUNKs than the client granted credit for. */
  CREDIT_EXCEEDED: "CREDIT_EXCEEDED",
} as const;
export type ProtocolFailure = (typeof ProtocolFailure)[keyof typeof ProtocolFailure];

/** Shape of `ProtocolError.data` when raised by the codec. */
export interface ProtocolErrorData {
  reason: ProtocolFailure;
  /** For DUPLICATE_ID: the id that was reused. */
  id?: number;
  /** Index of the offending frame (0 protocol id, 1 kind, 2 header, 3 payload). */
  frame?: number;
  /** The kind, once known. */
  kind?: string;
  /** For SCHEMA: dotted path of the failing header field. */
  path?: string;
}

/** PROTOCOL_ERROR. data from the codec: `ProtocolErrorData`. */
export class ProtocolError extends VoidRailError {
  static override readonly code = ErrorCode.PROTOCOL_ERROR;
  declare readonly code: typeof ErrorCode.PROTOCOL_ERROR;
  override readonly name = "ProtocolError";

  /** The codec's reason, if this error came from the codec. */
  get reason(): ProtocolFailure | undefined {
    const data = this.data as Partial<ProtocolErrorData> | undefined;
    return typeof data?.reason === "string" ? data.reason : undefined;
  }
}

/** SHUTTING_DOWN. */
export class ShuttingDownError extends VoidRailError {
  static override readonly code = ErrorCode.SHUTTING_DOWN;
  declare readonly code: typeof ErrorCode.SHUTTING_DOWN;
  override readonly name = "ShuttingDownError";
}

/** TASK_NOT_FOUND: an unknown task id; never a task state. data: `{ taskId }`. */
export class TaskNotFoundError extends VoidRailError {
  static override readonly code = ErrorCode.TASK_NOT_FOUND;
  declare readonly code: typeof ErrorCode.TASK_NOT_FOUND;
  override readonly name = "TaskNotFoundError";
}

/** SCHEDULE_NOT_FOUND: no schedule has this name (pause, resume). data: `{ name }`. */
export class ScheduleNotFoundError extends VoidRailError {
  static override readonly code = ErrorCode.SCHEDULE_NOT_FOUND;
  declare readonly code: typeof ErrorCode.SCHEDULE_NOT_FOUND;
  override readonly name = "ScheduleNotFoundError";
}

/** CONNECTION_LOST. Raised locally by a client; a router never sends it. */
export class ConnectionError extends VoidRailError {
  static override readonly code = ErrorCode.CONNECTION_LOST;
  declare readonly code: typeof ErrorCode.CONNECTION_LOST;
  override readonly name = "ConnectionError";
}

/** A VoidRail error class, with the code it owns. */
type ErrorClass = (new (message: string, options?: VoidRailErrorOptions) => VoidRailError) & { readonly code: string };

/** Every class that owns a code; the registry below is built from their own `code`. */
const ERROR_CLASSES: readonly ErrorClass[] = [
  NoSuchMethodError,
  QueueFullError,
  TimeoutError,
  CancelledError,
  DealerLostError,
  AuthError,
  ValidationError,
  RemoteError,
  ProtocolError,
  ShuttingDownError,
  ConnectionError,
  TaskNotFoundError,
  ScheduleNotFoundError,
];

const CLASS_BY_CODE: ReadonlyMap<string, ErrorClass> = new Map(ERROR_CLASSES.map((ErrorClass) => [ErrorClass.code, ErrorClass]));

/** An error as it travels: the ERROR header without `id`. */
export interface WireError {
  code: string;
  message: string;
  data?: unknown;
}

export interface ErrorToWireOptions {
  /** Send the stack of non-VoidRail exceptions in REMOTE_ERROR data. Default true. */
  includeStack?: boolean;
}

const utf8 = new TextEncoder();

/** Cuts `text` to `max` code units without splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 1] ?? "") ? max - 1 : max;
  return text.slice(0, end);
}

/** UTF-8 size of `value` as JSON, or -1 if it cannot be serialised (cycle, BigInt…). */
function jsonByteLength(value: unknown): number {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? -1 : utf8.encode(text).byteLength;
  } catch {
    return -1;
  }
}

function describeThrown(value: unknown): string {
  try {
    return typeof value === "string" ? value : `${String(value)}`;
  } catch {
    return `thrown ${typeof value}`;
  }
}

/**
 * Turns anything thrown into the `{ code, message, data? }` an ERROR header carries, always
 * within the header limits: a VoidRailError keeps its code and data; any other exception (or
 * thrown non-Error) becomes REMOTE_ERROR with `data: { name, message, stack? }`. Messages and
 * stacks are truncated; data that is too large or not JSON-serialisable becomes
 * `{ truncated: true }`. Never throws.
 *
 * @example
 * try { result = await method(...args) } catch (err) { send(encodeMessage("ERROR", { id, ...errorToWire(err) })) }
 */
export function errorToWire(err: unknown, options: ErrorToWireOptions = {}): WireError {
  const includeStack = options.includeStack ?? true;
  if (err instanceof VoidRailError && ERROR_CODE_PATTERN.test(err.code)) {
    const wire: WireError = { code: err.code, message: truncate(String(err.message), Limits.MAX_ERROR_MESSAGE_LENGTH) };
    if (err.data !== undefined) {
      const size = jsonByteLength(err.data);
      wire.data = size >= 0 && size <= Limits.MAX_ERROR_DATA_BYTES ? err.data : { truncated: true };
    }
    return wire;
  }
  let name = "Error";
  let message: string;
  let stack: string | undefined;
  if (err instanceof Error) {
    name = truncate(String(err.name), Limits.MAX_NAME_LENGTH);
    message = String(err.message);
    stack = includeStack && typeof err.stack === "string" ? truncate(err.stack, Limits.MAX_ERROR_STACK_LENGTH) : undefined;
  } else {
    message = describeThrown(err);
  }
  message = truncate(message, Limits.MAX_ERROR_MESSAGE_LENGTH);
  const data: RemoteErrorData = stack === undefined ? { name, message } : { name, message, stack };
  // Escaping can blow a 4096-character message up sixfold; drop the stack first, then shorten.
  if (jsonByteLength(data) > Limits.MAX_ERROR_DATA_BYTES) {
    delete data.stack;
    if (jsonByteLength(data) > Limits.MAX_ERROR_DATA_BYTES) {
      message = truncate(message, 1024);
      data.message = message;
    }
  }
  return { code: ErrorCode.REMOTE_ERROR, message, data };
}

/**
 * Rebuilds the error a peer sent: an instance of the class that owns `code` (with the same
 * message and data), or a bare `VoidRailError` carrying the unknown code.
 *
 * @example
 * if (msg.kind === "ERROR") pending.get(msg.header.id)?.reject(errorFromWire(msg.header));
 */
export function errorFromWire(wire: WireError): VoidRailError {
  const ErrorClass = CLASS_BY_CODE.get(wire.code);
  const options: VoidRailErrorOptions = wire.data === undefined ? {} : { data: wire.data };
  if (ErrorClass !== undefined) return new ErrorClass(wire.message, options);
  return new VoidRailError(wire.message, { ...options, code: wire.code });
}

/**
 * The router answers a missing and a wrong API key alike (BAD_KEY: it does not tell a prober
 * which keys exist), but the peer knows whether it sent one: says which of the two happened,
 * and adds `keyGiven` to the data. The error is returned unchanged for any other failure.
 *
 * @example
 * explainRefusedKey(errorFromWire(header), apiKey !== undefined, "client").message
 * // "the router refused this client's API key" or "the router requires a client API key and none was given"
 */
export function explainRefusedKey(error: VoidRailError, keyGiven: boolean, role: "client" | "dealer"): VoidRailError {
  if (error.code !== ErrorCode.AUTH_FAILED || (error.data as { reason?: unknown } | undefined)?.reason !== AuthFailure.BAD_KEY)
    return error;
  const text = keyGiven ? `the router refused this ${role}'s API key` : `the router requires a ${role} API key and none was given`;
  return new AuthError(text, { data: { ...(error.data as object), keyGiven }, cause: error });
}

/**
 * Builds a ValidationError from valibot issues; `prefix` is prepended to every path (e.g. "args").
 *
 * @example
 * const parsed = v.safeParse(schema, args);
 * if (!parsed.success) throw validationErrorFromIssues(parsed.issues, "args");
 */
export function validationErrorFromIssues(
  issues: readonly [v.BaseIssue<unknown>, ...v.BaseIssue<unknown>[]] | readonly v.BaseIssue<unknown>[],
  prefix = "",
): ValidationError {
  const list: ValidationIssue[] = issues.slice(0, 20).map((issue) => ({
    path: joinPath(prefix, v.getDotPath(issue) ?? ""),
    message: issue.message,
  }));
  const first = list[0] ?? { path: prefix, message: "Invalid value" };
  const where = first.path === "" ? "value" : first.path;
  return new ValidationError(`${where}: ${first.message}`, { data: { path: first.path, issues: list } });
}

function joinPath(prefix: string, path: string): string {
  if (prefix === "") return path;
  return path === "" ? prefix : `${prefix}.${path}`;
}
