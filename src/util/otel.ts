/**
 * Owns the optional use of `@opentelemetry/api` (an optional peer dependency): it is imported
 * once, dynamically, when a client, dealer or router starts; without it everything runs as
 * before and tracing costs one property read. With it, spans go to whatever SDK the application
 * registered (none: the API's no-op tracer).
 *
 * Also converts between a span context and W3C `traceparent`/`tracestate` strings, so the code
 * does not depend on the application having configured a propagator.
 */
import type * as OtelApi from "@opentelemetry/api";

export type Otel = typeof OtelApi;
export type Span = OtelApi.Span;
export type Context = OtelApi.Context;

/** The name every VoidRail tracer has. */
export const TRACER_NAME = "voidrail";

let loaded: Otel | undefined;
let loading: Promise<Otel | undefined> | undefined;

/** Imports @opentelemetry/api once; undefined when it is not installed. */
export function loadOtel(): Promise<Otel | undefined> {
  loading ??= import("@opentelemetry/api").then(
    (api) => {
      loaded = api;
      return api;
    },
    () => undefined,
  );
  return loading;
}

/**
 * The API, if loadOtel found it and an SDK has registered a tracer provider; otherwise undefined,
 * so that without an SDK no span is even started (the API alone only makes no-op spans).
 */
export function otel(): Otel | undefined {
  const api = loaded;
  if (api === undefined) return undefined;
  const provider = api.trace.getTracerProvider();
  const delegate = provider instanceof api.ProxyTracerProvider ? provider.getDelegate() : provider;
  noopProvider ??= new api.ProxyTracerProvider().getDelegate();
  return delegate === noopProvider ? undefined : api;
}

/** The API's no-op provider: what a ProxyTracerProvider delegates to before an SDK registers. */
let noopProvider: unknown;

/** A span's context as W3C headers; undefined for an invalid one (no SDK and no parent). */
export function traceHeadersOf(api: Otel, span: Span): { traceparent: string; tracestate?: string } | undefined {
  const context = span.spanContext();
  if (!api.isSpanContextValid(context)) return undefined;
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, "0");
  const traceparent = `00-${context.traceId}-${context.spanId}-${flags}`;
  const state = context.traceState?.serialize();
  return state ? { traceparent, tracestate: state } : { traceparent };
}

/** The context whose remote parent is the span that `traceparent` names (already checked). */
export function contextFromHeaders(api: Otel, traceparent: string, tracestate: string | undefined): Context {
  const [, traceId, spanId, flags] = traceparent.split("-");
  return api.trace.setSpanContext(api.ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16),
    isRemote: true,
    ...(tracestate ? { traceState: api.createTraceState(tracestate) } : {}),
  });
}

/** Starts a span of the VoidRail tracer named after the method, with the RPC attributes. */
export function startSpan(api: Otel, name: string, kind: OtelApi.SpanKind, parent: Context, startTime?: number): Span {
  return api.trace
    .getTracer(TRACER_NAME)
    .startSpan(
      name,
      { kind, attributes: { "rpc.system": "voidrail", "rpc.method": name }, ...(startTime !== undefined ? { startTime } : {}) },
      parent,
    );
}

/** Ends `span`, marked as an error (with the error's code and message) when `error` is given. */
export function endSpan(api: Otel, span: Span, error?: unknown, endTime?: number): void {
  if (error !== undefined) {
    const code = (error as { code?: unknown })?.code;
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error)?.message ?? String(error) });
    if (typeof code === "string") span.setAttribute("voidrail.error_code", code);
  }
  span.end(endTime);
}
