/**
 * The OpenTelemetry glue of ClientDealer: the trace context a call carries, and the client and
 * producer spans around calls and submits. Without OpenTelemetry loaded, or when the caller gives
 * its own trace context, no span is started and the context (if any) is passed on as given.
 */
import * as v from "valibot";
import { type TaskInfo, type TraceContext, TraceContextSchema, validationErrorFromIssues } from "../protocol/index.ts";
import { endSpan, otel, startSpan, traceHeadersOf } from "../util/otel.ts";

/** The trace fields of CallOptions and of the submit options. */
export interface TraceOptions {
  traceparent?: string;
  tracestate?: string;
}

/** The options' trace fields, checked, as a REQUEST's `trace`; undefined when none. */
export function traceOf(options: TraceOptions): TraceContext | undefined {
  const { traceparent, tracestate } = options;
  if (traceparent === undefined && tracestate === undefined) return undefined;
  const checked = v.safeParse(TraceContextSchema, { traceparent, ...(tracestate !== undefined ? { tracestate } : {}) });
  if (!checked.success) throw validationErrorFromIssues(checked.issues, "options");
  return checked.output;
}

/** What a unary call carries and how it ends its span. */
export interface CallTrace {
  /** The REQUEST's `trace`: the caller's, else the client span's; undefined when neither. */
  trace: TraceContext | undefined;
  /** Ends the client span, as failed when given an error; undefined when no span was started. */
  end: ((error?: unknown) => void) | undefined;
}

/**
 * Starts a unary call's client span, when OpenTelemetry is loaded and the caller gave no trace
 * context of its own (that context wins: it is carried untouched). Throws ValidationError for a
 * malformed `traceparent` / `tracestate`.
 */
export function startCallTrace(method: string, options: TraceOptions): CallTrace {
  const given = traceOf(options);
  const api = given === undefined ? otel() : undefined;
  if (api === undefined) return { trace: given, end: undefined };
  const span = startSpan(api, method, api.SpanKind.CLIENT, api.context.active());
  return { trace: traceHeadersOf(api, span), end: (error) => endSpan(api, span, error) };
}

/**
 * Runs `submit` inside a producer span, the parent of every attempt's span, when OpenTelemetry is
 * loaded and the caller gave no trace context; the span's context goes in the options' trace fields.
 */
export async function tracedSubmit<O extends TraceOptions>(
  method: string,
  options: O,
  submit: (options: O) => Promise<TaskInfo>,
): Promise<TaskInfo> {
  const api = options.traceparent === undefined && options.tracestate === undefined ? otel() : undefined;
  if (api === undefined) return submit(options);
  const span = startSpan(api, `${method} submit`, api.SpanKind.PRODUCER, api.context.active());
  const headers = traceHeadersOf(api, span);
  try {
    const task = await submit(headers ? { ...options, ...headers } : options);
    span.setAttribute("voidrail.task_id", task.id);
    endSpan(api, span);
    return task;
  } catch (error) {
    endSpan(api, span, error);
    throw error;
  }
}
