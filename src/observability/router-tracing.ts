/**
 * Owns the router's OpenTelemetry spans (with @opentelemetry/api installed): for each call that
 * carries a trace context, a `<method> queue` span (arrival to dispatch) and a `<method> route`
 * span (arrival to its end, with its outcome), children of the caller's span. They are made
 * from router events after the fact, with their real start times; the trace context the call
 * carries to its dealer stays the caller's (the router is not a hop of the trace).
 */
import type { CallView, RouterEvents } from "../router/events.ts";
import { contextFromHeaders, endSpan, type Otel, startSpan } from "../util/otel.ts";
import { outcomeOf } from "./router-metrics.ts";

export class RouterTracing {
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly events: RouterEvents,
    private readonly api: Otel,
  ) {}

  attach(): void {
    this.unsubscribe.push(this.events.on("call.dispatched", this.onDispatched), this.events.on("call.finished", this.onFinished));
  }

  detach(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private readonly onDispatched = (call: CallView): void => {
    const trace = call.trace;
    if (trace === undefined) return;
    const { api } = this;
    const span = startSpan(
      api,
      `${call.method} queue`,
      api.SpanKind.INTERNAL,
      contextFromHeaders(api, trace.traceparent, trace.tracestate),
      epochMs(call.receivedAt),
    );
    if (call.dealer) span.setAttribute("voidrail.dealer_id", call.dealer.id);
    endSpan(api, span);
  };

  private readonly onFinished = (call: CallView): void => {
    const trace = call.trace;
    if (trace === undefined) return;
    const { api } = this;
    const span = startSpan(
      api,
      `${call.method} route`,
      api.SpanKind.INTERNAL,
      contextFromHeaders(api, trace.traceparent, trace.tracestate),
      epochMs(call.receivedAt),
    );
    const outcome = outcomeOf(call.outcome);
    span.setAttribute("voidrail.outcome", outcome);
    if (call.task) span.setAttribute("voidrail.task_id", call.task.id);
    endSpan(api, span, outcome === "ok" ? undefined : { code: call.outcome, message: `the call ended with ${call.outcome}` });
  };
}

/** A performance.now() reading as epoch milliseconds. */
function epochMs(performanceNow: number): number {
  return performance.timeOrigin + performanceNow;
}
