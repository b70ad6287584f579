/**
 * The field schemas every VoidRail header is built from: the limits receivers enforce, name and id
 * patterns, request ids, durations, tags, bounded JSON values and W3C trace context.
 * `messages.ts` (core kinds) and `task-messages.ts` (tasks, flows, schedules) both build on these.
 */
import * as v from "valibot";

/**
 * Bounds every receiver enforces. Lengths of strings are in UTF-16 code units (JavaScript
 * `string.length`); every name-like field is ASCII, where that equals bytes.
 */
export const Limits = {
  /** Largest header frame (frame 2) in bytes for every kind but HELLO. */
  MAX_HEADER_BYTES: 64 * 1024,
  /** Largest HELLO header in bytes: a dealer's registration carries every method's JSON Schema. */
  MAX_HELLO_HEADER_BYTES: 1024 * 1024,
  /** Longest service name, and longest method name on either side of the dot. */
  MAX_NAME_LENGTH: 128,
  /** Longest `instanceId` and `dealerId`. */
  MAX_ID_LENGTH: 128,
  /** Longest API key. */
  MAX_API_KEY_LENGTH: 512,
  /** Longest method description. */
  MAX_DESCRIPTION_LENGTH: 4096,
  /** Longest ERROR message; `errorToWire` truncates to this. */
  MAX_ERROR_MESSAGE_LENGTH: 4096,
  /** Longest remote stack carried in REMOTE_ERROR data; `errorToWire` truncates to this. */
  MAX_ERROR_STACK_LENGTH: 8192,
  /** Largest ERROR `data` once encoded, in bytes; `errorToWire` replaces larger data. */
  MAX_ERROR_DATA_BYTES: 16 * 1024,
  /** Most methods one dealer may register. */
  MAX_METHODS: 1024,
  /** Deepest nesting of free-form JSON in headers (`params`, `metadata`, ERROR `data`). */
  MAX_JSON_DEPTH: 32,
  /** Largest `timeoutMs`, `deadlineMs` and heartbeat value: the largest delay a JS timer takes. */
  MAX_DURATION_MS: 2_147_483_647,
  /** Largest `credit` and CREDIT `n`. */
  MAX_CREDIT: 2_147_483_647,
  /** Largest `maxConcurrent`. */
  MAX_CONCURRENT: 65_535,
  /** Largest protocol revision a HELLO may announce. */
  MAX_VERSION: 65_535,
  /** Longest kind name (frame 1). */
  MAX_KIND_LENGTH: 16,
  /** Most tags one dealer may carry, and most entries of one `require`. */
  MAX_TAGS: 32,
  /** Most devices (`gpus`) one dealer may report. */
  MAX_GPUS: 64,
} as const;

/** Service names and each half of a method name: an ASCII identifier. */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Full method names: `Service.method`. */
export const METHOD_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}\.[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** `instanceId`, `dealerId`: printable ASCII without spaces. */
export const ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** Heartbeat tokens: 22-128 URL-safe base64 characters (at least 128 random bits). */
export const BEAT_TOKEN_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;
/** API keys: printable ASCII without spaces. */
export const API_KEY_PATTERN = /^[\x21-\x7e]{1,512}$/;
/** Error codes: upper-case ASCII words joined by underscores; open set, see `ErrorCode`. */
export const ERROR_CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * Request ids are non-negative safe integers, chosen by the client per connection and by the
 * router per dispatch. A counter is all a sender needs, numbers make cheap map keys, and there is
 * no length, charset or `"1"`-versus-`1` question to answer.
 */
export const RequestIdSchema = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
export type RequestId = v.InferOutput<typeof RequestIdSchema>;

export const ServiceNameSchema = v.pipe(v.string(), v.maxLength(Limits.MAX_NAME_LENGTH), v.regex(NAME_PATTERN));
export const MethodNameSchema = v.pipe(
  v.string(),
  v.maxLength(2 * Limits.MAX_NAME_LENGTH + 1),
  v.regex(METHOD_NAME_PATTERN, "Invalid method name: expected Service.method"),
);
/**
 * Why `method` is not a full method name, or undefined when it is one. Callers check before
 * sending, so a mistyped name fails at once with a sentence instead of a PROTOCOL_ERROR.
 *
 * @example describeBadMethodName("echo") // '"echo" is not a method name: expected Service.method, e.g. EchoService.echo'
 */
export function describeBadMethodName(method: unknown): string | undefined {
  if (typeof method !== "string") return `the method name must be a string, got ${method === null ? "null" : typeof method}`;
  if (METHOD_NAME_PATTERN.test(method)) return undefined;
  const shown = JSON.stringify(method.length > 80 ? `${method.slice(0, 80)}…` : method);
  const parts = method.split(".");
  if (parts.length !== 2 || parts.some((part) => part.length === 0))
    return `${shown} is not a method name: expected Service.method, e.g. EchoService.echo`;
  return `${shown} is not a method name: expected Service.method, each part an identifier (letters, digits, _; not starting with a digit; at most ${Limits.MAX_NAME_LENGTH} characters)`;
}
export const IdStringSchema = v.pipe(v.string(), v.maxLength(Limits.MAX_ID_LENGTH), v.regex(ID_PATTERN));
/** A host name as the machine reports it (DNS allows 253; printable ASCII without spaces). */
export const HOST_PATTERN = /^[\x21-\x7e]{1,255}$/;
export const HostSchema = v.pipe(v.string(), v.regex(HOST_PATTERN));
// Custom messages: valibot's defaults quote the received value, which would put keys in logs.
export const ApiKeySchema = v.pipe(
  v.string("Invalid API key: expected a string"),
  v.maxLength(Limits.MAX_API_KEY_LENGTH, `Invalid API key: longer than ${Limits.MAX_API_KEY_LENGTH} characters`),
  v.regex(API_KEY_PATTERN, "Invalid API key: expected printable ASCII without spaces"),
);
export const VersionSchema = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Limits.MAX_VERSION));
export const DurationMsSchema = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Limits.MAX_DURATION_MS));
export const PositiveDurationMsSchema = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Limits.MAX_DURATION_MS));
export const CreditSchema = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Limits.MAX_CREDIT));
export const CountSchema = v.pipe(v.number(), v.safeInteger(), v.minValue(0));

/** Tag names: `gpu`, `region`, `model.family`: an identifier that may also hold `.` and `-`. */
export const TAG_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** Tag values: printable ASCII without spaces, 1-128 characters (`h200`, `eu-west`). */
export const TAG_VALUE_PATTERN = /^[\x21-\x7e]{1,128}$/;

/**
 * A dealer's tags, or a call's `require`: name → value, at most `MAX_TAGS` entries. A call that
 * requires tags runs only on a dealer whose tags hold every one of them with the same value.
 */
export const TagsSchema = v.pipe(
  v.record(
    v.pipe(v.string(), v.regex(TAG_NAME_PATTERN, "Invalid tag name: expected letters, digits, _, . or -, starting with a letter or _")),
    v.pipe(v.string(), v.regex(TAG_VALUE_PATTERN, "Invalid tag value: expected 1-128 printable ASCII characters without spaces")),
  ),
  v.check((tags) => Object.keys(tags).length <= Limits.MAX_TAGS, `Invalid tags: at most ${Limits.MAX_TAGS} entries`),
);
export type Tags = v.InferOutput<typeof TagsSchema>;

/**
 * True when `value` nests objects and arrays no deeper than `maxDepth` (a scalar is depth 0,
 * `[]` and `{}` are depth 1). Iterative, so hostile nesting cannot overflow the stack.
 */
export function isWithinJsonDepth(value: unknown, maxDepth: number): boolean {
  if (value === null || typeof value !== "object") return true;
  const pending: unknown[] = [value];
  const depths: number[] = [1];
  while (pending.length > 0) {
    const node = pending.pop() as object;
    const depth = depths.pop() as number;
    if (depth > maxDepth) return false;
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (child !== null && typeof child === "object") {
        pending.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Any JSON value nested at most `maxDepth` deep. */
export function jsonValueSchema(maxDepth: number = Limits.MAX_JSON_DEPTH) {
  return v.custom<unknown>((value) => isWithinJsonDepth(value, maxDepth), `Invalid JSON value: nested deeper than ${maxDepth}`);
}

/** A JSON object (not an array) nested at most `maxDepth` deep. */
export function jsonObjectSchema(maxDepth: number = Limits.MAX_JSON_DEPTH) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, "Invalid type: expected a JSON object"),
    v.check((value) => isWithinJsonDepth(value, maxDepth), `Invalid JSON object: nested deeper than ${maxDepth}`),
  );
}

/**
 * W3C Trace Context: `traceparent` ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"; a
 * later version may append fields) and `tracestate` (vendor list). Carried as the caller gave
 * them; the router never changes them.
 */
export const TRACEPARENT_PATTERN = /^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-[\x21-\x7e]*)?$/;
export const TraceparentSchema = v.pipe(
  v.string(),
  v.maxLength(256),
  v.regex(TRACEPARENT_PATTERN, "Invalid traceparent (W3C Trace Context)"),
);
export const TracestateSchema = v.pipe(v.string(), v.maxLength(512), v.regex(/^[\x20-\x7e]*$/, "Invalid tracestate (W3C Trace Context)"));
export const TraceContextSchema = v.object({ traceparent: TraceparentSchema, tracestate: v.optional(TracestateSchema) });
export type TraceContext = v.InferOutput<typeof TraceContextSchema>;
