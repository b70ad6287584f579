/**
 * OpenTelemetry around a dealer's call: a server span (consumer for a task attempt) that is a
 * child of the caller's trace context, and the method run inside it. Without OpenTelemetry loaded
 * there is no span and nothing is allocated.
 */
import { contextFromHeaders, endSpan, otel, startSpan } from "../util/otel.ts";

/** A REQUEST's trace context (W3C headers). */
export interface TraceHeaders {
  traceparent: string;
  tracestate?: string;
}

/** The span of one running call. */
export interface CallSpan {
  /** Runs `fn` inside the span's context, so spans it makes are children of it. */
  run<T>(fn: () => T): T;
  /** Ends the span, as failed when `failure` is set. */
  end(failure: unknown): void;
}

/** Starts the span of a call to `method`; undefined when OpenTelemetry is not loaded. */
export function startCallSpan(method: string, isTask: boolean, trace: TraceHeaders | undefined): CallSpan | undefined {
  const api = otel();
  if (api === undefined) return undefined;
  const parent = trace ? contextFromHeaders(api, trace.traceparent, trace.tracestate) : api.ROOT_CONTEXT;
  const span = startSpan(api, method, isTask ? api.SpanKind.CONSUMER : api.SpanKind.SERVER, parent);
  return {
    run: (fn) => api.context.with(api.trace.setSpan(api.context.active(), span), fn),
    end: (failure) => endSpan(api, span, failure),
  };
}

/** A REQUEST's trace context as CallContext fields. */
export function traceFields(trace: TraceHeaders): TraceHeaders {
  return trace.tracestate === undefined
    ? { traceparent: trace.traceparent }
    : { traceparent: trace.traceparent, tracestate: trace.tracestate };
}
