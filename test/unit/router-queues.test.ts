/** A method's queue keeps the count of the calls that really wait, through every way in and out. */
import { describe, expect, test } from "bun:test";
import { CancelledError, ShuttingDownError, TimeoutError } from "../../src/protocol/index.ts";
import type { Call } from "../../src/router/calls.ts";
import type { MethodQueue } from "../../src/router/queues.ts";
import { routerParts } from "../helpers/router-parts.ts";

/** A busy dealer for Svc.m and three calls waiting behind its one running call. */
function threeWaiting() {
  const parts = routerParts();
  const dealer = parts.addDealer("A", ["Svc.m"]);
  const running = parts.submit("Svc.m");
  const waiting = [parts.submit("Svc.m"), parts.submit("Svc.m"), parts.submit("Svc.m")];
  const queue = parts.queues.of("Svc.m");
  expect(queue.count).toBe(3);
  return { ...parts, dealer, running, waiting, queue };
}

/** The count agrees with what really waits in the line. */
function expectConsistent(queue: MethodQueue<Call>, count: number): void {
  expect(queue.count).toBe(count);
  expect(queue.snapshot().length).toBe(count);
}

describe("queue counts", () => {
  test("queued: each waiting call counts once", () => {
    const { queue } = threeWaiting();
    expectConsistent(queue, 3);
  });

  test("dispatched: a call leaving for a free slot leaves the count", () => {
    const parts = threeWaiting();
    parts.answer(parts.running);
    expectConsistent(parts.queue, 2);
    expect(parts.queue.peek()).toBe(parts.waiting[1]);
  });

  test("cancelled: a waiting call cancelled by its client leaves the count at once, and is skipped later", () => {
    const parts = threeWaiting();
    parts.calls.finished(parts.waiting[0], new CancelledError("cancelled by the client"));
    expectConsistent(parts.queue, 2);
    parts.answer(parts.running);
    expect(parts.waiting[1].state).toBe("running");
    expectConsistent(parts.queue, 1);
  });

  test("expired: a waiting call that times out leaves the count", () => {
    const parts = threeWaiting();
    parts.calls.finished(parts.waiting[2], new TimeoutError("Svc.m did not finish within 10 ms"));
    expectConsistent(parts.queue, 2);
    expect(parts.sink.replies).toEqual([{ clientId: parts.waiting[2].clientId, kind: "ERROR", code: "TIMEOUT" }]);
  });

  test("client gone: its waiting calls leave the count, with nothing sent", () => {
    const parts = threeWaiting();
    parts.calls.abandoned(parts.waiting[1], "client disconnected");
    parts.calls.abandoned(parts.waiting[2], "client disconnected");
    expectConsistent(parts.queue, 1);
    expect(parts.sink.replies).toEqual([]);
  });

  test("refused as full: the count stays at the limit", () => {
    const parts = routerParts({ maxQueueLength: 2 });
    parts.addDealer("A", ["Svc.m"]);
    for (let i = 0; i < 5; i++) parts.submit("Svc.m");
    expectConsistent(parts.queues.of("Svc.m"), 2);
    expect(parts.sink.replies.map((reply) => reply.code)).toEqual(["QUEUE_FULL", "QUEUE_FULL"]);
  });

  test("re-queued after a lost dealer: counted again, at the head", () => {
    const parts = threeWaiting();
    parts.addDealer("B", ["Svc.other"]);
    parts.registry.lost(parts.dealer, "disconnected");
    // Nobody offers Svc.m now: the waiting calls fail, the running one too (no dealer can take it).
    expectConsistent(parts.queue, 0);
    const again = routerParts();
    const a = again.addDealer("A", ["Svc.m"]);
    const running = again.submit("Svc.m", { waitForDealer: true });
    again.submit("Svc.m");
    again.registry.lost(a, "disconnected");
    expectConsistent(again.queues.of("Svc.m"), 1);
    expect(again.queues.of("Svc.m").peek()).toBe(running);
  });

  test("stopping: every waiting call ends with SHUTTING_DOWN and the counts are zero", () => {
    const parts = threeWaiting();
    for (const call of parts.queues.waitingCalls()) parts.calls.finished(call, new ShuttingDownError("the router is stopping"));
    parts.queues.drainAll();
    expectConsistent(parts.queue, 0);
    expect(parts.queues.total).toBe(0);
    expect([...parts.queues.methodsWithWaiting()]).toEqual([]);
  });

  test("every path mixed: the count always equals the calls still waiting", () => {
    const parts = routerParts({ mode: "load_balance" });
    parts.addDealer("A", ["Svc.m"], 3);
    const all: Call[] = [];
    const queue = () => parts.queues.of("Svc.m");
    for (let round = 0; round < 200; round++) {
      all.push(parts.submit("Svc.m"));
      const waiting = all.filter((call) => call.state === "queued");
      const running = all.filter((call) => call.state === "running");
      if (round % 5 === 1 && waiting.length > 0) parts.calls.finished(waiting[0], new CancelledError("cancelled"));
      if (round % 7 === 2 && waiting.length > 1) parts.calls.abandoned(waiting[1], "client disconnected");
      if (round % 11 === 3 && waiting.length > 2) parts.calls.finished(waiting[2], new TimeoutError("expired"));
      if (round % 3 === 0 && running.length > 0) parts.answer(running[0]);
      // Counted apart from the queue: every call of this test still in state "queued".
      expect(queue().count).toBe(all.filter((call) => call.state === "queued").length);
    }
    expect(queue().count).toBeGreaterThan(0);
    expect(parts.queues.total).toBe(queue().count);
  });
});
