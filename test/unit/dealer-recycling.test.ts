/**
 * Recycling (a dealer's maxCalls / maxMemory, behind `voidrail dealer --max-calls-per-instance
 * --max-memory-per-instance`) on a fake RecyclingHost and a fake RSS reader: each limit asks for
 * one recycle when passed and not before, no limit set means never, onRecycle replaces the
 * host's recycle (and a throwing one is only warned about), nothing is asked while the dealer is
 * leaving anyway, and the memory check runs on its interval and stops once it has asked. Timers
 * are real; the spy (test/helpers/timer-spy.ts) shows which intervals are left armed.
 *
 *   ./node_modules/.bin/bun test test/unit/dealer-recycling.test.ts
 */
import { afterEach, expect, test } from "bun:test";
import { type RecycleReason, Recycling, type RecyclingHost, type RecyclingOptions } from "../../src/dealer/recycling.ts";
import { TimerSpy } from "../helpers/timer-spy.ts";
import { waitFor, withinLoaded } from "../helpers/wait.ts";

const MiB = 1024 * 1024;

class FakeHost implements RecyclingHost {
  isServing = true;
  readonly recycles: RecycleReason[] = [];
  readonly warnings: string[] = [];

  serving(): boolean {
    return this.isServing;
  }

  recycle(reason: RecycleReason): void {
    this.recycles.push(reason);
  }

  warn(message: string): void {
    this.warnings.push(message);
  }
}

/** An RSS the test sets, in MiB, that counts how often it is read. */
class FakeRss {
  mib = 100;
  reads = 0;
  readonly read = (): number => {
    this.reads++;
    return this.mib * MiB;
  };
}

const made: Recycling[] = [];
let spy: TimerSpy | undefined;

function recycling(options: RecyclingOptions, host = new FakeHost(), rss = new FakeRss()) {
  const instance = new Recycling(options, host, rss.read);
  made.push(instance);
  return { instance, host, rss };
}

afterEach(() => {
  spy?.restore();
  spy = undefined;
  for (const instance of made.splice(0)) instance.stopMemoryChecks();
});

test("maxCalls: asks once, at the call that reaches the limit and not before", () => {
  const { instance, host, rss } = recycling({ maxCalls: 3 });
  rss.mib = 42.4;
  instance.countCall();
  instance.countCall();
  expect(host.recycles).toEqual([]);
  instance.countCall();
  expect(host.recycles).toEqual([{ limit: "maxCalls", calls: 3, rssMiB: 42, message: "served 3 calls (maxCalls 3)" }]);
  for (let i = 0; i < 10; i++) instance.countCall();
  expect(host.recycles).toHaveLength(1);
  expect(host.warnings).toEqual([]);
});

test("maxCalls 1: the first call asks", () => {
  const { instance, host } = recycling({ maxCalls: 1 });
  instance.countCall();
  expect(host.recycles.map((reason) => reason.message)).toEqual(["served 1 calls (maxCalls 1)"]);
});

test("no limits set: never asks, never reads RSS and arms no timer", () => {
  spy = TimerSpy.install();
  const { instance, host, rss } = recycling({});
  rss.mib = 1_000_000;
  instance.startMemoryChecks();
  for (let i = 0; i < 10_000; i++) instance.countCall();
  expect(host.recycles).toEqual([]);
  expect(rss.reads).toBe(0);
  expect(spy.timers).toEqual([]);
});

test("maxMemory without maxCalls: calls are counted but never ask on their own", () => {
  const { instance, host } = recycling({ maxMemory: 200 });
  for (let i = 0; i < 1000; i++) instance.countCall();
  expect(host.recycles).toEqual([]);
});

test("maxMemory: checks at once when started, then on its interval, and asks once RSS passes it", async () => {
  spy = TimerSpy.install();
  const { instance, host, rss } = recycling({ maxMemory: 200, memoryCheckInterval: 0.01 });
  instance.countCall();
  instance.countCall();
  instance.startMemoryChecks();
  expect(rss.reads).toBe(1);
  expect(host.recycles).toEqual([]);
  const [interval] = spy.live({ kind: "interval" });
  expect(interval?.delayMs).toBe(10);

  await waitFor(() => rss.reads >= 3, { timeoutMs: withinLoaded(20), message: "two more RSS checks on the 10 ms interval" });
  expect(host.recycles).toEqual([]);

  rss.mib = 300.4;
  await waitFor(() => host.recycles.length > 0, { timeoutMs: withinLoaded(10), message: "a maxMemory recycle" });
  expect(host.recycles).toEqual([{ limit: "maxMemory", calls: 2, rssMiB: 300, message: "RSS 300 MiB passed maxMemory 200 MiB" }]);
  // Having asked, it stops checking: the interval was cleared in the same turn.
  expect(spy.live({ kind: "interval" })).toEqual([]);
  expect(interval?.cleared).toBe(true);
});

test("maxMemory: RSS exactly at the limit has not passed it", () => {
  const { instance, host, rss } = recycling({ maxMemory: 200 });
  rss.mib = 200;
  instance.startMemoryChecks();
  expect(host.recycles).toEqual([]);
  rss.mib = 200.01;
  instance.stopMemoryChecks();
  instance.startMemoryChecks();
  expect(host.recycles.map((reason) => reason.limit)).toEqual(["maxMemory"]);
});

test("maxMemory already passed when started: asks at once and leaves no interval armed", () => {
  spy = TimerSpy.install();
  const { instance, host, rss } = recycling({ maxMemory: 200 });
  rss.mib = 512;
  instance.startMemoryChecks();
  expect(host.recycles.map((reason) => reason.message)).toEqual(["RSS 512 MiB passed maxMemory 200 MiB"]);
  expect(spy.live({ kind: "interval" })).toEqual([]);
});

test("the memory check interval defaults to 1 s, does not keep the process alive, and starts once", () => {
  spy = TimerSpy.install();
  const { instance } = recycling({ maxMemory: 200 });
  instance.startMemoryChecks();
  instance.startMemoryChecks();
  expect(spy.timers.map((timer) => [timer.kind, timer.delayMs])).toEqual([["interval", 1000]]);
  const [interval] = spy.timers;
  expect((interval?.handle as { hasRef(): boolean } | undefined)?.hasRef()).toBe(false);
});

test("stopMemoryChecks clears the interval; starting again checks again", () => {
  spy = TimerSpy.install();
  const { instance, rss } = recycling({ maxMemory: 200, memoryCheckInterval: 5 });
  instance.startMemoryChecks();
  instance.stopMemoryChecks();
  expect(spy.live({ kind: "interval" })).toEqual([]);
  instance.stopMemoryChecks();
  instance.startMemoryChecks();
  expect(rss.reads).toBe(2);
  expect(spy.live({ kind: "interval" })).toHaveLength(1);
});

test("whichever limit passes first asks; the other one passing later asks nothing", () => {
  const { instance, host, rss } = recycling({ maxCalls: 2, maxMemory: 200 });
  instance.countCall();
  instance.countCall();
  rss.mib = 900;
  instance.startMemoryChecks();
  instance.countCall();
  expect(host.recycles.map((reason) => reason.limit)).toEqual(["maxCalls"]);
});

test("onRecycle replaces the host's recycle and is called once", () => {
  const reasons: RecycleReason[] = [];
  const { instance, host } = recycling({ maxCalls: 2, onRecycle: (reason) => reasons.push(reason) });
  for (let i = 0; i < 5; i++) instance.countCall();
  expect(reasons.map((reason) => reason.message)).toEqual(["served 2 calls (maxCalls 2)"]);
  expect(host.recycles).toEqual([]);
});

test("an onRecycle that throws is warned about, not retried, and the host does not recycle instead", () => {
  let calls = 0;
  const { instance, host, rss } = recycling({
    maxCalls: 1,
    maxMemory: 200,
    onRecycle: () => {
      calls++;
      throw new Error("supervisor gone");
    },
  });
  instance.countCall();
  instance.countCall();
  rss.mib = 900;
  instance.startMemoryChecks();
  expect(calls).toBe(1);
  expect(host.warnings).toEqual(["onRecycle threw: supervisor gone"]);
  expect(host.recycles).toEqual([]);
});

test("a dealer that is draining or stopped is leaving anyway: passing a limit asks nothing", () => {
  const host = new FakeHost();
  host.isServing = false;
  const reasons: RecycleReason[] = [];
  const byCalls = recycling({ maxCalls: 1 }, host).instance;
  const rss = new FakeRss();
  rss.mib = 900;
  const byMemory = recycling({ maxMemory: 200, onRecycle: (reason) => reasons.push(reason) }, host, rss).instance;
  byCalls.countCall();
  byCalls.countCall();
  byMemory.startMemoryChecks();
  expect(host.recycles).toEqual([]);
  expect(reasons).toEqual([]);
  expect(host.warnings).toEqual([]);
});
