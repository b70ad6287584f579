/**
 * Owns the router's OpenTelemetry spans (with @opentelemetry/api installed): for each call that
 * carries a trace context, a `<method> queue` span (arrival to dispatch: the queue wait), a
 * `<method> dispatch` span (dispatch to the dealer's answer, with the dealer's id: the call's
 * time on its dealer as the router sees it, network included) and a `<method> route` span
 * (arrival to its end, with its outcome), children of the caller's span. They are made
 * from router events after the fact, with their real start times; the trace context the call
 * carries to its dealer stays the caller's (the router is not a hop of the trace).
 */
import type { CallView, RouterEvents } from "../router/events.ts";
import { contextFromHeaders, endSpan, type Otel, startSpan } from "../util/otel.ts";
import { outcomeOf } from "./router-metrics.ts";

export class RouterTracing {
  private readonly unsubscribe: (() => void)[] = [];
  /** performance.now() of each traced call's latest dispatch; weak, so a call whose client left costs nothing. */
  private readonly dispatchedAt = new WeakMap<CallView, { at: number; dealerId: string | undefined }>();

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
    const span = this.childOfCaller(trace, `${call.method} queue`, call.receivedAt);
    if (call.dealer) span.setAttribute("voidrail.dealer_id", call.dealer.id);
    endSpan(this.api, span);
    this.dispatchedAt.set(call, { at: performance.now(), dealerId: call.dealer?.id });
  };

  private readonly onFinished = (call: CallView): void => {
    const trace = call.trace;
    if (trace === undefined) return;
    const outcome = outcomeOf(call.outcome);
    const status = outcome === "ok" ? undefined : { code: call.outcome, message: `the call ended with ${call.outcome}` };
    const route = this.childOfCaller(trace, `${call.method} route`, call.receivedAt);
    route.setAttribute("voidrail.outcome", outcome);
    if (call.task) route.setAttribute("voidrail.task_id", call.task.id);
    endSpan(this.api, route, status);
    // A call that ended before any dealer took it (a timeout in the queue, say) has no dispatch span.
    const dispatched = this.dispatchedAt.get(call);
    if (dispatched === undefined) return;
    this.dispatchedAt.delete(call);
    const dispatch = this.childOfCaller(trace, `${call.method} dispatch`, dispatched.at);
    if (dispatched.dealerId !== undefined) dispatch.setAttribute("voidrail.dealer_id", dispatched.dealerId);
    dispatch.setAttribute("voidrail.outcome", outcome);
    endSpan(this.api, dispatch, status);
  };

  /** An INTERNAL span under the caller's span, started at `startedAt` (performance.now()). */
  private childOfCaller(trace: NonNullable<CallView["trace"]>, name: string, startedAt: number) {
    const { api } = this;
    return startSpan(api, name, api.SpanKind.INTERNAL, contextFromHeaders(api, trace.traceparent, trace.tracestate), epochMs(startedAt));
  }
}

/** A performance.now() reading as epoch milliseconds. */
function epochMs(performanceNow: number): number {
  return performance.timeOrigin + performanceNow;
}
