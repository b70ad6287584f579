/** Dispatch without sockets: which dealer takes which call, in both modes. */
import { describe, expect, test } from "bun:test";
import { routerParts } from "../helpers/router-parts.ts";

/** "dealer:method" of every REQUEST sent so far, in order. */
function dispatched(parts: ReturnType<typeof routerParts>): string[] {
  return parts.outbound.requests().map((request) => `${request.to}:${request.method}`);
}

describe("fifo mode", () => {
  test("a dealer whose slot frees up takes the oldest waiting call across all its methods", () => {
    const parts = routerParts({ mode: "fifo" });
    const dealer = parts.addDealer("Shop", ["Shop.a", "Shop.b"]);
    const first = parts.submit("Shop.a");
    const waiting = [parts.submit("Shop.b"), parts.submit("Shop.a"), parts.submit("Shop.b")];
    expect(waiting.map((call) => call.state)).toEqual(["queued", "queued", "queued"]);
    parts.answer(first);
    parts.answer(waiting[0]);
    parts.answer(waiting[1]);
    expect(dispatched(parts)).toEqual(["Shop:Shop.a", "Shop:Shop.b", "Shop:Shop.a", "Shop:Shop.b"]);
    expect(parts.outbound.requests().map((request) => request.id)).toEqual(
      [first, ...waiting].map((call) => call.routerId).sort((a, b) => a - b),
    );
    expect(dealer.load).toBe(1);
  });

  test("one call at a time per dealer by default; the dealer idle longest goes first", () => {
    const parts = routerParts({ mode: "fifo" });
    parts.addDealer("A", ["Svc.m"]);
    parts.addDealer("B", ["Svc.m"]);
    parts.addDealer("C", ["Svc.m"]);
    const calls = [parts.submit("Svc.m"), parts.submit("Svc.m"), parts.submit("Svc.m"), parts.submit("Svc.m")];
    expect(dispatched(parts)).toEqual(["A:Svc.m", "B:Svc.m", "C:Svc.m"]);
    expect(calls[3].state).toBe("queued");
    parts.answer(calls[1]);
    // B's slot freed first, so B takes the waiting call.
    expect(dispatched(parts).at(-1)).toBe("B:Svc.m");
    parts.answer(calls[0]);
    parts.answer(calls[2]);
    // Both idle now; A was dispatched to longest ago.
    parts.submit("Svc.m");
    expect(dispatched(parts).at(-1)).toBe("A:Svc.m");
  });

  test("a draining dealer gets no new calls; the others take them", () => {
    const parts = routerParts({ mode: "fifo" });
    const a = parts.addDealer("A", ["Svc.m"]);
    parts.addDealer("B", ["Svc.m"]);
    parts.registry.drain(a);
    parts.submit("Svc.m");
    const second = parts.submit("Svc.m");
    expect(dispatched(parts)).toEqual(["B:Svc.m"]);
    expect(second.state).toBe("queued");
  });

  test("calls waiting for a dealer that drains go to one that registers later", () => {
    const parts = routerParts({ mode: "fifo" });
    const a = parts.addDealer("A", ["Svc.m"]);
    const running = parts.submit("Svc.m");
    const waiting = parts.submit("Svc.m");
    parts.registry.drain(a);
    parts.answer(running);
    expect(waiting.state).toBe("queued");
    parts.addDealer("B", ["Svc.m"]);
    expect(waiting.state).toBe("running");
    expect(dispatched(parts)).toEqual(["A:Svc.m", "B:Svc.m"]);
  });
});

describe("load_balance mode", () => {
  test("the least-loaded dealer, relative to its slots, takes the next call", () => {
    const parts = routerParts({ mode: "load_balance" });
    parts.addDealer("Small", ["Svc.m"], 2);
    parts.addDealer("Large", ["Svc.m"], 10);
    for (let i = 0; i < 7; i++) parts.submit("Svc.m");
    // 0/2 vs 0/10: Small (the first of equals); then Large while its ratio is below Small's 1/2;
    // at 5/10 against 1/2 the tie goes to the dealer dispatched to longest ago, Small.
    const L = "Large:Svc.m";
    expect(dispatched(parts)).toEqual(["Small:Svc.m", L, L, L, L, L, "Small:Svc.m"]);
  });

  test("ties rotate: equal dealers share calls in turn", () => {
    const parts = routerParts({ mode: "load_balance" });
    parts.addDealer("A", ["Svc.m"], 4);
    parts.addDealer("B", ["Svc.m"], 4);
    const calls = [parts.submit("Svc.m"), parts.submit("Svc.m")];
    parts.answer(calls[0]);
    parts.answer(calls[1]);
    parts.submit("Svc.m");
    parts.submit("Svc.m");
    expect(dispatched(parts)).toEqual(["A:Svc.m", "B:Svc.m", "A:Svc.m", "B:Svc.m"]);
  });

  test("draining dealers are skipped even when they are the least loaded", () => {
    const parts = routerParts({ mode: "load_balance" });
    const idle = parts.addDealer("Idle", ["Svc.m"], 100);
    parts.addDealer("Busy", ["Svc.m"], 100);
    parts.registry.drain(idle);
    for (let i = 0; i < 3; i++) parts.submit("Svc.m");
    expect(dispatched(parts)).toEqual(["Busy:Svc.m", "Busy:Svc.m", "Busy:Svc.m"]);
  });

  test("when every dealer is full, calls wait and go out as slots free up", () => {
    const parts = routerParts({ mode: "load_balance" });
    parts.addDealer("A", ["Svc.m"], 2);
    const calls = [parts.submit("Svc.m"), parts.submit("Svc.m"), parts.submit("Svc.m")];
    expect(calls.map((call) => call.state)).toEqual(["running", "running", "queued"]);
    parts.answer(calls[0]);
    expect(calls[2].state).toBe("running");
  });
});

test("a full queue refuses a new call with QUEUE_FULL and keeps what waits", () => {
  const parts = routerParts({ queueLimits: { "Svc.m": 1 } });
  parts.addDealer("A", ["Svc.m"]);
  parts.submit("Svc.m");
  const waiting = parts.submit("Svc.m");
  const refused = parts.submit("Svc.m");
  expect(waiting.state).toBe("queued");
  expect(refused.state).toBe("done");
  expect(parts.sink.replies).toEqual([{ clientId: refused.clientId, kind: "ERROR", code: "QUEUE_FULL" }]);
  expect(parts.queues.count("Svc.m")).toBe(1);
});
