/** RouterMetrics driven by a router's events from a fake source: labels, caps, intervals. */
import { describe, expect, test } from "bun:test";
import { RouterMetrics } from "../../src/observability/router-metrics.ts";
import { type CallView, RouterEvents } from "../../src/router/events.ts";

function fakeSource(offered: Set<string>) {
  const events = new RouterEvents();
  return {
    events,
    info: (topic: string) => (topic === "clusters" ? [] : { inProgressRequests: 0 }),
    waitingCalls: () => new Map<string, { count: number; oldestReceivedAt: number }>(),
    offeredMethod: (method: string) => (offered.has(method) ? {} : undefined),
    tasks: undefined,
  };
}

function finished(method: string, outcome: string, agoMs = 2): CallView {
  return {
    seq: 1,
    method,
    clientId: 1,
    stream: false,
    state: "done",
    routerId: 5,
    dealer: null,
    outcome,
    receivedAt: performance.now() - agoMs,
    task: undefined,
    trace: undefined,
  };
}

const value = (text: string, series: string) =>
  text
    .split("\n")
    .find((line) => line.startsWith(`${series} `))
    ?.split(" ")[1];

describe("RouterMetrics", () => {
  test("counts outcomes per registered method; methods nobody offers are 'other'", () => {
    const source = fakeSource(new Set(["A.ok"]));
    const metrics = new RouterMetrics(source, { version: "1.2.3" });
    metrics.attach();
    source.events.emit("call.finished", finished("A.ok", "RESULT"));
    source.events.emit("call.finished", finished("A.ok", "TIMEOUT"));
    source.events.emit("call.finished", finished("A.ok", "SOME_APP_ERROR"));
    for (let i = 0; i < 5; i++) source.events.emit("call.finished", finished(`Random.m${i}`, "NO_SUCH_METHOD"));
    const text = metrics.scrape();
    expect(value(text, 'voidrail_requests_total{method="A.ok",outcome="ok"}')).toBe("1");
    expect(value(text, 'voidrail_requests_total{method="A.ok",outcome="timeout"}')).toBe("1");
    expect(value(text, 'voidrail_requests_total{method="A.ok",outcome="error"}')).toBe("1");
    expect(value(text, 'voidrail_requests_total{method="other",outcome="no_dealer"}')).toBe("5");
    expect(text).not.toContain("Random.m");
    metrics.detach();
    source.events.emit("call.finished", finished("A.ok", "RESULT"));
    expect(value(metrics.scrape(), 'voidrail_requests_total{method="A.ok",outcome="ok"}')).toBe("1");
  });

  test("at most maxLabelValues method labels: the rest count as 'other'", () => {
    const offered = new Set(Array.from({ length: 10 }, (_, i) => `S.m${i}`));
    const source = fakeSource(offered);
    const metrics = new RouterMetrics(source, { version: "1", maxLabelValues: 3 });
    metrics.attach();
    for (const method of offered) source.events.emit("call.finished", finished(method, "RESULT"));
    const text = metrics.scrape();
    const labels = new Set([...text.matchAll(/voidrail_requests_total\{method="([^"]+)"/g)].map((m) => m[1]));
    expect(labels.size).toBeLessThanOrEqual(4);
    expect(labels.has("other")).toBe(true);
    expect(value(text, 'voidrail_requests_total{method="other",outcome="ok"}')).toBe("7");
  });

  test("takeInterval: the calls since the last take, their errors and latency", () => {
    const source = fakeSource(new Set(["A.ok"]));
    const metrics = new RouterMetrics(source, { version: "1" });
    metrics.attach();
    expect(metrics.takeInterval()).toEqual({ calls: 0, errors: 0, p50Seconds: undefined, p99Seconds: undefined });
    for (let i = 0; i < 9; i++) source.events.emit("call.finished", finished("A.ok", "RESULT", 2));
    source.events.emit("call.finished", finished("A.ok", "TIMEOUT", 2));
    const first = metrics.takeInterval();
    expect(first.calls).toBe(10);
    expect(first.errors).toBe(1);
    expect(first.p50Seconds).toBeGreaterThan(0.001);
    expect(first.p50Seconds).toBeLessThanOrEqual(0.05);
    source.events.emit("call.finished", finished("A.ok", "RESULT"));
    expect(metrics.takeInterval()).toMatchObject({ calls: 1, errors: 0 });
  });

  test("a call queued again after it was dispatched counts as a redispatch", () => {
    const source = fakeSource(new Set(["A.ok"]));
    const metrics = new RouterMetrics(source, { version: "1" });
    metrics.attach();
    source.events.emit("call.queued", { ...finished("A.ok", "RESULT"), routerId: 0 });
    source.events.emit("call.queued", { ...finished("A.ok", "RESULT"), routerId: 42 });
    expect(value(metrics.scrape(), 'voidrail_redispatches_total{method="A.ok"}')).toBe("1");
  });
});
