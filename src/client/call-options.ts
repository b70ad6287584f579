/**
 * CallOptions and the checks that unary calls and streams make alike before anything is sent.
 * Apart from client-dealer.ts so that client-streams.ts can use them without importing the client.
 */
import * as v from "valibot";
import {
  type CompressOption,
  describeBadMethodName,
  type encodeValue,
  TagsSchema,
  ValidationError,
  validationErrorFromIssues,
} from "../protocol/index.ts";

/** Per-call options. */
export interface CallOptions {
  /** Seconds; overrides the client's default. 0 = none. */
  timeout?: number;
  /** Abort to cancel the call: it leaves the router's queue, or the running method sees its signal. */
  signal?: AbortSignal;
  /** Wait in the queue for a dealer to register instead of failing with NoSuchMethodError. */
  waitForDealer?: boolean;
  /**
   * Compress the binary values among the arguments: "zstd" or "gzip", or `{ codec, force, level }`
   * (PROTOCOL.md §5.2). Bytes already in a compressed format (PNG, JPEG, zip, gzip, MP4, ...) and
   * frames under 1 KiB are sent as they are unless `force`; the JSON part is not compressed. The
   * result is compressed as its method says (`@serviceMethod({ compress })`). zstd needs Bun or
   * Node ≥ 22.15. Default: off.
   */
  compress?: CompressOption;
  /**
   * Safe to run twice: resent transparently if the connection to the router is lost. The resent
   * call waits for a dealer (as with `waitForDealer`): a restarted router knows no methods until
   * its dealers have registered again.
   */
  idempotent?: boolean;
  /**
   * Run only on a dealer whose tags include all of these (`{ gpu: "h200" }`; a dealer gets tags
   * from `--tag`, the `tags` option, or `--gpus`). Among those dealers calls keep FIFO order. No
   * such dealer: NoSuchMethodError naming the requirement, unless `waitForDealer`.
   */
  require?: Record<string, string>;
  /** W3C `traceparent` of the caller's span: carried to the dealer untouched (the method's CallContext). */
  traceparent?: string;
  /** W3C `tracestate`, with `traceparent`. */
  tracestate?: string;
}

/** Arguments encoded for a REQUEST: the JSON part and, when they hold binary values, its frames. */
export type EncodedArgs = Extract<ReturnType<typeof encodeValue>, { ok: true }>;

/** The longest setTimeout delay in seconds (2^31 - 1 ms): a longer timeout would fire at once. */
export const MAX_TIMER_SECONDS = 2_147_483;

/**
 * Refuses a malformed method name before anything is sent: the router would answer it with a
 * PROTOCOL_ERROR about a header field, which does not tell a caller what to write instead.
 */
export function checkMethodName(method: string): void {
  const problem = describeBadMethodName(method);
  if (problem !== undefined) throw new ValidationError(problem, { data: { path: "method" } });
}

/** A call's `require`, checked (a ValidationError names the bad entry); undefined when it has none. */
export function checkedRequire(require: Record<string, string> | undefined): Record<string, string> | undefined {
  if (require === undefined) return undefined;
  const parsed = v.safeParse(TagsSchema, require);
  if (!parsed.success) throw validationErrorFromIssues(parsed.issues, "require");
  return Object.keys(parsed.output).length > 0 ? parsed.output : undefined;
}
