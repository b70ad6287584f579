/**
 * LiveFeed over a fake router (RouterMetrics fed by emitted call events, a queue table the test
 * sets) with a short interval: one snapshot per interval however many calls end in between, the
 * keep-alive comment, per-method queue points bounded by depth, subscribers that leave or stop
 * reading dropped without disturbing the others, and stop() ending every stream.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type LivePoint, type LiveSnapshot, LiveFeed, MAX_QUEUES_PER_POINT } from "../../src/http/live.ts";
import { RouterMetrics } from "../../src/observability/router-metrics.ts";
import { type CallView, RouterEvents } from "../../src/router/events.ts";
import { type SseMessage, SseReader } from "../helpers/sse.ts";
import { waitFor } from "../helpers/wait.ts";

/** Ticks in these tests: short, so a few fit in a test; deadlines are many ticks long for a loaded machine. */
const INTERVAL_MS = 50;
const DEADLINE_MS = 5000;

function fakeRouter() {
  const events = new RouterEvents();
  const waiting = new Map<string, { count: number; oldestReceivedAt: number }>();
  return {
    events,
    waiting,
    info: (topic: string): unknown => {
      if (topic === "clusters") return [];
      if (topic === "queues") return {};
      return { inProgressRequests: 0, queuedRequests: 0 };
    },
    waitingCalls: () => waiting,
    offeredMethod: (method: string) => (method.startsWith("Echo.") ? {} : undefined),
    tasks: undefined,
  };
}

function finished(method: string, outcome = "RESULT"): CallView {
  return {
    seq: 1,
    method,
    clientId: 1,
    stream: false,
    state: "done",
    routerId: 1,
    dealer: null,
    outcome,
    receivedAt: performance.now() - 3,
    task: undefined,
    trace: undefined,
  };
}

const feeds: LiveFeed[] = [];
afterEach(() => {
  for (const feed of feeds.splice(0)) feed.stop();
});

function startFeed(options: { heartbeatMs?: number } = {}) {
  const router = fakeRouter();
  const metrics = new RouterMetrics(router, { version: "test" });
  metrics.attach();
  const feed = new LiveFeed(router, metrics, { intervalMs: INTERVAL_MS, ...options });
  feed.start();
  feeds.push(feed);
  return { router, feed };
}

const isSnapshot = (message: SseMessage) => message.event === "snapshot";
const snapshotOf = (message: SseMessage) => JSON.parse(message.data) as LiveSnapshot;

/** A subscription whose first two messages (history, then the current snapshot) are read. */
async function subscribed(feed: LiveFeed): Promise<SseReader> {
  const reader = new SseReader(feed.subscribe());
  const history = await reader.next({ timeoutMs: DEADLINE_MS, message: "the history event" });
  expect(history?.event).toBe("history");
  expect(Array.isArray(JSON.parse(history!.data))).toBe(true);
  const current = await reader.next({ timeoutMs: DEADLINE_MS, message: "the current snapshot" });
  expect(current?.event).toBe("snapshot");
  return reader;
}

describe("LiveFeed", () => {
  test("calls between two ticks arrive as one snapshot that counts them all, not as an event each", async () => {
    const { router, feed } = startFeed();
    const reader = await subscribed(feed);
    // One synchronous burst: no tick can run inside it, so the next tick's point holds all of it.
    for (let i = 0; i < 500; i++) router.events.emit("call.finished", finished("Echo.add"));
    for (let i = 0; i < 7; i++) router.events.emit("call.finished", finished("Echo.add", "TIMEOUT"));
    const seen = await reader.collect((m) => isSnapshot(m) && snapshotOf(m).point.calls > 0, {
      timeoutMs: DEADLINE_MS,
      message: "a snapshot with the burst's calls",
    });
    const withCalls = seen.filter(isSnapshot).map((m) => snapshotOf(m).point);
    // Snapshots before it (a tick that ran before the burst) count nothing.
    expect(withCalls.slice(0, -1).every((p) => p.calls === 0)).toBe(true);
    const batch = withCalls.at(-1)!;
    expect(batch.calls).toBe(507);
    expect(batch.errors).toBe(7);
    expect(batch.p50Ms).toBeGreaterThan(0);
    // Only snapshots (and nothing per call) between the subscription and the batch.
    expect(seen.every((m) => m.event === "snapshot" || m.event === "comment")).toBe(true);
    // The next tick starts from zero: each call is counted in one point only.
    const next = await reader.collect(isSnapshot, { timeoutMs: DEADLINE_MS, message: "the snapshot after the batch" });
    expect(snapshotOf(next.at(-1)!).point.calls).toBe(0);
    expect(feed.points().reduce((sum, p) => sum + p.calls, 0)).toBe(507);
  });

  test("calls spread over several ticks: one snapshot per tick, each counting only its own", async () => {
    const { router, feed } = startFeed();
    const reader = await subscribed(feed);
    const started = performance.now();
    let emitted = 0;
    // 40 calls a millisecond for ~5 ticks: thousands of calls, a handful of events.
    while (performance.now() - started < INTERVAL_MS * 5) {
      for (let i = 0; i < 40; i++) router.events.emit("call.finished", finished("Echo.add"));
      emitted += 40;
      await Bun.sleep(1);
    }
    let counted = 0;
    const seen = await reader.collect(
      (m) => {
        if (isSnapshot(m)) counted += snapshotOf(m).point.calls;
        return counted >= emitted;
      },
      { timeoutMs: DEADLINE_MS, message: `snapshots counting all ${emitted} calls` },
    );
    expect(counted).toBe(emitted);
    const snapshots = seen.filter(isSnapshot).length;
    // One event per tick: the elapsed time bounds them, the calls do not (ticks may run late, never early).
    const ticks = Math.ceil((seen.at(-1)!.at - started) / INTERVAL_MS) + 1;
    expect(snapshots).toBeLessThanOrEqual(ticks);
    expect(snapshots).toBeLessThan(emitted / 20);
  });

  test("a keep-alive comment line arrives every heartbeat period, snapshots or not", async () => {
    const { feed } = startFeed({ heartbeatMs: 30 });
    const reader = await subscribed(feed);
    const seen = await reader.collect((m) => m.event === "comment", { timeoutMs: DEADLINE_MS, message: "a keep-alive comment" });
    expect(seen.at(-1)!.comments).toEqual(["keep-alive"]);
    expect(seen.at(-1)!.data).toBe("");
    // It keeps coming.
    await reader.collect((m) => m.event === "comment", { timeoutMs: DEADLINE_MS, message: "a second keep-alive comment" });
  });

  test("the default heartbeat is 15 s: none within a few ticks", async () => {
    const { feed } = startFeed();
    const reader = await subscribed(feed);
    const seen = await reader.collect((m) => isSnapshot(m) && feed.points().length >= 5, {
      timeoutMs: DEADLINE_MS,
      message: "five ticks",
    });
    expect(seen.some((m) => m.event === "comment")).toBe(false);
  });

  test("a subscriber that cancels is dropped; the others keep getting snapshots", async () => {
    const { router, feed } = startFeed();
    const leaving = await subscribed(feed);
    const staying = await subscribed(feed);
    expect(feed.subscriberCount).toBe(2);
    await leaving.cancel();
    expect(feed.subscriberCount).toBe(1);
    router.events.emit("call.finished", finished("Echo.add"));
    await staying.collect((m) => isSnapshot(m) && snapshotOf(m).point.calls === 1, {
      timeoutMs: DEADLINE_MS,
      message: "the staying subscriber's snapshot with the call",
    });
    // And a few ticks later it still gets them: the cancelled one broke nothing.
    const after = feed.points().length;
    await staying.collect(() => feed.points().length >= after + 3, { timeoutMs: DEADLINE_MS, message: "three more ticks" });
    expect(feed.subscriberCount).toBe(1);
  });

  test("a subscriber that stops reading is dropped after its backlog; the others are not held up", async () => {
    const { feed } = startFeed();
    const stalled = feed.subscribe();
    const reading = await subscribed(feed);
    // 30 unread events is the limit; at 50 ms a tick that is about 1.5 s.
    await waitFor(
      async () => {
        await reading.next({ timeoutMs: DEADLINE_MS, message: "a snapshot" });
        return feed.subscriberCount === 1;
      },
      { timeoutMs: 30 * INTERVAL_MS + DEADLINE_MS * 2, message: "the stalled subscriber to be dropped" },
    );
    // What it had queued is still readable, and then its stream ends (the browser reconnects).
    const rest = new SseReader(stalled);
    let count = 0;
    while ((await rest.next({ timeoutMs: DEADLINE_MS, message: "the stalled stream's backlog" })) !== null) count++;
    expect(count).toBeGreaterThanOrEqual(30);
    expect(count).toBeLessThanOrEqual(33);
    await reading.collect(isSnapshot, { timeoutMs: DEADLINE_MS, message: "the reading subscriber's next snapshot" });
  });

  test("each point keeps the queues of the busiest methods by depth, at most MAX_QUEUES_PER_POINT, beside the totals", async () => {
    const { router, feed } = startFeed();
    const now = performance.now();
    // 12 methods waiting, depth 1..12; the oldest calls are on the shallow ones.
    for (let i = 1; i <= 12; i++) router.waiting.set(`Echo.m${i}`, { count: i, oldestReceivedAt: now - (13 - i) * 1000 });
    const reader = await subscribed(feed);
    const [message] = (await reader.collect(isSnapshot, { timeoutMs: DEADLINE_MS, message: "a snapshot" })).slice(-1);
    const point: LivePoint = snapshotOf(message).point;
    expect(point.queued).toBe(78);
    expect(point.oldestAgeSeconds).toBeGreaterThanOrEqual(12);
    expect(point.queues.map((q) => q.method)).toEqual([12, 11, 10, 9, 8, 7, 6, 5].map((i) => `Echo.m${i}`));
    expect(point.queues).toHaveLength(MAX_QUEUES_PER_POINT);
    expect(point.queuesLeftOut).toBe(4);
    const m12 = point.queues[0];
    expect(m12.depth).toBe(12);
    expect(m12.oldestAgeSeconds).toBeGreaterThanOrEqual(1);
    expect(m12.oldestAgeSeconds).toBeLessThan(1 + DEADLINE_MS / 1000);
    // The history (GET /api/history) holds the same points.
    expect(feed.points().at(-1)?.queues).toHaveLength(MAX_QUEUES_PER_POINT);

    // Queues drained: the next points list none, and leave none out.
    router.waiting.clear();
    const drained = await reader.collect((m) => isSnapshot(m) && snapshotOf(m).point.queued === 0, {
      timeoutMs: DEADLINE_MS,
      message: "a snapshot with the queues drained",
    });
    expect(snapshotOf(drained.at(-1)!).point.queues).toEqual([]);
    expect(snapshotOf(drained.at(-1)!).point.queuesLeftOut).toBe(0);
  });

  test("stop() ends every subscriber's stream and forgets them", async () => {
    const { feed } = startFeed();
    const readers = [await subscribed(feed), await subscribed(feed)];
    feed.stop();
    expect(feed.subscriberCount).toBe(0);
    for (const reader of readers) {
      let message: SseMessage | null;
      do message = await reader.next({ timeoutMs: DEADLINE_MS, message: "the stream to end" });
      while (message !== null);
    }
  });
});
