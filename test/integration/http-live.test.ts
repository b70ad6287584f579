/**
 * The router's live feed through real sockets: GET /api/events answers as a proxy-proof event
 * stream (text/event-stream, no-store, x-accel-buffering: no), and while a client makes hundreds
 * of calls the stream carries about one snapshot a second whose points add up to those calls;
 * per-method queue points name each method with calls waiting, in the stream and in /api/history.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { LivePoint, LiveSnapshot } from "../../src/http/live.ts";
import { Cluster } from "../helpers/cluster.ts";
import { type SseMessage, SseReader } from "../helpers/sse.ts";
import { waitFor } from "../helpers/wait.ts";
import { EchoService, GatedService, Probe } from "../fixtures/services.ts";

/** A deadline for the next snapshot: the feed pushes one a second; a loaded machine runs timers late. */
const SNAPSHOT_MS = 10_000;
/** The load runs at least this long: about three intervals of the feed. */
const LOAD_MS = 4_000;
/** And makes at least this many calls, so that one event per call could not pass for batching. */
const LEAST_CALLS = 300;

let cluster = new Cluster("tcp");
let aborts: AbortController[] = [];
afterEach(async () => {
  for (const abort of aborts) abort.abort();
  aborts = [];
  await cluster.dispose();
  cluster = new Cluster("tcp");
});

/** GET /api/events, its first two messages (history, the current snapshot) read. */
async function subscribe(url: string): Promise<{ response: Response; events: SseReader }> {
  const abort = new AbortController();
  aborts.push(abort);
  const response = await fetch(`${url}/api/events`, { signal: abort.signal });
  expect(response.status).toBe(200);
  const events = new SseReader(response.body!);
  expect((await events.next({ timeoutMs: SNAPSHOT_MS, message: "the history event" }))?.event).toBe("history");
  expect((await events.next({ timeoutMs: SNAPSHOT_MS, message: "the current snapshot" }))?.event).toBe("snapshot");
  return { response, events };
}

const pointOf = (message: SseMessage): LivePoint => (JSON.parse(message.data) as LiveSnapshot).point;

describe("GET /api/events", () => {
  test("an event stream no proxy caches or buffers", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    const { response } = await subscribe(router.httpUrl!);
    expect(response.headers.get("content-type")).toStartWith("text/event-stream");
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("x-accel-buffering")).toBe("no");
  }, 30_000);

  test("while hundreds of calls run, about one snapshot a second, whose points count every call", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    await cluster.dealer((options) => new EchoService(options));
    const client = await cluster.client();
    const { events } = await subscribe(router.httpUrl!);

    // Read the stream while the load runs, as a browser does.
    const snapshots: SseMessage[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const message = await events.next({ timeoutMs: SNAPSHOT_MS, message: "a snapshot during the load" });
        if (message === null) throw new Error("the event stream ended during the load");
        if (message.event === "snapshot") snapshots.push(message);
      }
    })();

    const loadStart = performance.now();
    let calls = 0;
    while (performance.now() - loadStart < LOAD_MS || calls < LEAST_CALLS) {
      await Promise.all(Array.from({ length: 16 }, (_, i) => client.call("EchoService.add", [i, 1])));
      calls += 16;
      // Paced, not flat out: thousands of calls a second show the batching as well, and leave the
      // shared machine (and the feed's own timer) some CPU.
      await Bun.sleep(2);
    }
    const loadEnd = performance.now();

    // Every call ended before the load loop saw its reply: the points to come add up to all of them.
    await waitFor(() => snapshots.reduce((sum, m) => sum + pointOf(m).calls, 0) >= calls, {
      timeoutMs: SNAPSHOT_MS,
      message: `snapshots counting all ${calls} calls`,
    });
    reading = false;
    await reader;
    expect(snapshots.reduce((sum, m) => sum + pointOf(m).calls, 0)).toBe(calls);

    // Counted by their arrival here, over the load's own measured time: loose bounds for a loaded machine.
    const windowSeconds = (loadEnd - loadStart) / 1000;
    const during = snapshots.filter((m) => m.at >= loadStart && m.at <= loadEnd).length;
    const perSecond = during / windowSeconds;
    expect(perSecond).toBeLessThanOrEqual(3);
    expect(perSecond).toBeGreaterThanOrEqual(0.5);
    expect(calls / windowSeconds).toBeGreaterThan(perSecond * 20);
    // Every event carries data: the snapshot, not a per-call notice.
    expect(snapshots.every((m) => m.data.startsWith("{"))).toBe(true);
  }, 60_000);

  test("calls waiting on two methods: each method's depth in the points, streamed and in /api/history", async () => {
    const router = await cluster.router({ http: { port: 0 } });
    const probe = new Probe();
    await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 1 });
    const client = await cluster.client();
    const { events } = await subscribe(router.httpUrl!);
    const held = ["a", "b", "c"].map((tag) => client.call("GatedService.hold", [tag]));
    await waitFor(() => probe.active === 1, { timeoutMs: SNAPSHOT_MS, message: "the first held call to run" });
    const quick = ["q1", "q2"].map((tag) => client.call("GatedService.quick", [tag]));
    try {
      const seen = await events.collect((m) => m.event === "snapshot" && pointOf(m).queues.length === 2 && pointOf(m).queued === 4, {
        timeoutMs: SNAPSHOT_MS,
        message: "a point with both methods waiting",
      });
      const point = pointOf(seen.at(-1)!);
      expect(point.queues.map((q) => [q.method, q.depth])).toEqual([
        ["GatedService.hold", 2],
        ["GatedService.quick", 2],
      ]);
      expect(point.queues.every((q) => q.oldestAgeSeconds >= 0)).toBe(true);
      expect(point.queuesLeftOut).toBe(0);
      const history = (await (await fetch(`${router.httpUrl}/api/history`)).json()) as LivePoint[];
      expect(history.some((p) => p.queues.some((q) => q.method === "GatedService.quick" && q.depth === 2))).toBe(true);
    } finally {
      probe.gate.open();
    }
    await Promise.all([...held, ...quick]);
  }, 30_000);
});
