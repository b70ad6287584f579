/**
 * Dispatch, over tcp and ipc: FIFO (one call per dealer, strict arrival order, streams hold
 * their slot), load balancing (several calls per dealer, least-loaded first, a queue when all
 * are full), many calls in flight, and stream flow control.
 *
 *   ./node_modules/.bin/bun test test/integration/core-dispatch.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type ClientDealer, RouterMode } from "../../src/index.ts";
import { EchoService, FloodProbe, FloodService, GatedService, Probe, TimedService } from "../fixtures/services.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

/** Waits until the router reports `length` requests waiting for `method`. */
function queueLengthReaches(client: ClientDealer, method: string, length: number): Promise<void> {
  return waitFor(async () => ((await client.getQueueStatus())[method]?.queueLength ?? 0) === length, {
    timeoutMs: 5_000,
    message: `${length} request(s) queued for ${method}`,
  });
}

for (const transport of TRANSPORTS) {
  describe(`FIFO dispatch over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("3 dealers run 6 calls (three of 0.5 s, three of 0.1 s) three at a time, one at a time each", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO });
      const probe = new Probe();
      for (let i = 0; i < 3; i++) await cluster.dealer((options) => new TimedService(options, probe));
      const client = await cluster.client();

      const startedAt = performance.now();
      const results = await Promise.all([
        client.invoke("TimedService.work", "slow-1", 500),
        client.invoke("TimedService.work", "slow-2", 500),
        client.invoke("TimedService.work", "slow-3", 500),
        client.invoke("TimedService.work", "fast-1", 100),
        client.invoke("TimedService.work", "fast-2", 100),
        client.invoke("TimedService.work", "fast-3", 100),
      ]);
      const elapsedMs = performance.now() - startedAt;

      expect(results).toEqual(["slow-1", "slow-2", "slow-3", "fast-1", "fast-2", "fast-3"]);
      // Three at once, and never more: one call at a time on each of the three dealers. Read from
      // the order of events, not the clock: a loaded machine stretches the time, not the order.
      let running = 0;
      let mostRunning = 0;
      for (const event of probe.events) {
        running += event.startsWith("start:") ? 1 : -1;
        mostRunning = Math.max(mostRunning, running);
      }
      expect(mostRunning).toBe(3);
      // The three slow calls were the first three to start, together.
      expect(new Set(probe.events.slice(0, 3))).toEqual(new Set(["start:slow-1", "start:slow-2", "start:slow-3"]));
      expect(elapsedMs).toBeGreaterThanOrEqual(500);
    });

    test("one dealer runs one call at a time, strictly in arrival order, across methods", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO });
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const first = client.invoke("GatedService.hold", "first");
      await waitFor(() => probe.events.includes("start:first"), { timeoutMs: 5_000, message: "the first call to start" });
      const tags = Array.from({ length: 30 }, (_, i) => `call-${i}`);
      const rest = tags.map((tag, i) => client.invoke(i % 2 === 0 ? "GatedService.quick" : "GatedService.quickAsync", tag));
      await waitFor(async () => (await client.getRouterInfo()).queuedRequests === tags.length, {
        timeoutMs: 5_000,
        message: "30 requests queued",
      });
      expect(probe.matching("start:")).toEqual(["start:first"]);

      probe.gate.open();
      await Promise.all([first, ...rest]);

      expect(probe.matching("start:")).toEqual(["start:first", ...tags.map((tag) => `start:${tag}`)]);
      expect(probe.maxActive).toBe(1);
    });

    test("a streaming call holds its dealer's slot until the stream ends", async () => {
      await cluster.router({ routerMode: RouterMode.FIFO });
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const stream = client.stream<number>("GatedService.ticker", 3)[Symbol.asyncIterator]();
      const firstChunks = [await stream.next(), await stream.next(), await stream.next()].map((step) => step.value);
      expect(firstChunks).toEqual([0, 1, 2]);

      const after = client.invoke("GatedService.quick", "after-stream");
      await queueLengthReaches(client, "GatedService.quick", 1);
      expect(probe.events).not.toContain("start:after-stream");
      const clusters = await client.discoverClusters();
      expect(clusters[0]).toMatchObject({ state: "active", busy: true, load: 1, maxConcurrent: 1 });

      probe.gate.open();
      expect(await stream.next()).toEqual({ value: undefined, done: true });
      expect(await after).toEqual({ tag: "after-stream", by: "gated" });
      expect(probe.events).toEqual(["start:ticker", "end:ticker", "start:after-stream", "end:after-stream"]);
    });
  });

  describe(`LOAD_BALANCE dispatch over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("a dealer takes several calls in flight (default maxConcurrent)", async () => {
      await cluster.router({ routerMode: RouterMode.LOAD_BALANCE });
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe));
      const client = await cluster.client();

      const calls = Array.from({ length: 8 }, (_, i) => client.invoke("GatedService.hold", `c${i}`));
      await waitFor(() => probe.active === 8, { timeoutMs: 5_000, message: "8 calls running at once on one dealer" });
      const [dealer] = await client.discoverClusters();
      expect(dealer).toMatchObject({ load: 8, maxConcurrent: 100, state: "active", busy: true });

      probe.gate.open();
      expect((await Promise.all(calls)).map((result) => (result as { tag: string }).tag)).toEqual(
        Array.from({ length: 8 }, (_, i) => `c${i}`),
      );
    });

    test("the least-loaded dealer is picked, so calls spread over 2 dealers", async () => {
      await cluster.router({ routerMode: RouterMode.LOAD_BALANCE });
      const probeA = new Probe();
      const probeB = new Probe();
      await cluster.dealer((options) => new GatedService(options, probeA, "A"), { maxConcurrent: 10 });
      await cluster.dealer((options) => new GatedService(options, probeB, "B"), { maxConcurrent: 10 });
      const client = await cluster.client();

      const calls = Array.from({ length: 6 }, (_, i) => client.invoke("GatedService.hold", `c${i}`));
      await waitFor(() => probeA.active + probeB.active === 6, { timeoutMs: 5_000, message: "6 calls running" });

      expect([probeA.active, probeB.active]).toEqual([3, 3]);
      const loads = (await client.discoverClusters()).map((dealer) => dealer.load);
      expect(loads).toEqual([3, 3]);
      probeA.gate.open();
      probeB.gate.open();
      const by = (await Promise.all(calls)).map((result) => (result as { by: string }).by);
      expect(by.filter((label) => label === "A")).toHaveLength(3);
    });

    test("when every dealer is full, requests wait in the queue instead of failing", async () => {
      await cluster.router({ routerMode: RouterMode.LOAD_BALANCE });
      const probe = new Probe();
      await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 2 });
      await cluster.dealer((options) => new GatedService(options, probe), { maxConcurrent: 2 });
      const client = await cluster.client();

      const calls = Array.from({ length: 7 }, (_, i) => client.invoke("GatedService.hold", `c${i}`));
      await waitFor(() => probe.active === 4, { timeoutMs: 5_000, message: "4 calls running" });
      await queueLengthReaches(client, "GatedService.hold", 3);
      const queues = await client.getQueueStatus();
      expect(queues["GatedService.hold"]).toEqual({ queueLength: 3, availableServices: 0, busyServices: 2 });
      expect((await client.discoverClusters()).map((dealer) => [dealer.state, dealer.load === dealer.maxConcurrent])).toEqual([
        ["active", true],
        ["active", true],
      ]);

      probe.gate.open();
      const results = await Promise.all(calls);
      expect(results.map((result) => (result as { tag: string }).tag)).toEqual(Array.from({ length: 7 }, (_, i) => `c${i}`));
      expect(probe.maxActive).toBe(4);
      expect((await client.getRouterInfo()).queuedRequests).toBe(0);
    });
  });

  describe(`calls in flight and stream flow control over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("one client with 2000 concurrent invokes: each gets its own answer", async () => {
      await cluster.router({ routerMode: RouterMode.LOAD_BALANCE });
      await cluster.dealer((options) => new EchoService(options));
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      const count = 2000;
      const results = await Promise.all(
        Array.from({ length: count }, (_, n) => client.invoke<{ n: number; square: number }>("EchoService.square", n)),
      );

      for (let n = 0; n < count; n++) expect(results[n]).toEqual({ n, square: n * n });
      const clusters = await client.discoverClusters();
      expect(clusters.reduce((sum, dealer) => sum + dealer.counts.succeeded, 0)).toBe(count);
    });

    for (const streamWindow of [undefined, 16]) {
      const window = streamWindow ?? 64;
      test(`a fast producer never runs more than the window (${window}) ahead of a slow consumer`, async () => {
        await cluster.router();
        const flood = new FloodProbe();
        await cluster.dealer((options) => new FloodService(options, flood));
        const client = await cluster.client(streamWindow === undefined ? {} : { streamWindow });
        const total = 10_000;
        const slowPart = 150;
        const slack = 4;

        const iterator = client.stream<number>("FloodService.flow", total)[Symbol.asyncIterator]();
        // Read nothing until the producer has filled the window.
        await waitFor(() => flood.produced >= window, { timeoutMs: 5_000, message: `the producer to fill the window of ${window}` });
        let consumed = 0;
        let maxLead = flood.produced;
        const received: number[] = [];
        for (;;) {
          const step = await iterator.next();
          if (step.done) break;
          received.push(step.value);
          consumed++;
          maxLead = Math.max(maxLead, flood.produced - consumed);
          // The slow consumer: a pause per chunk for the first part (workload, not synchronisation).
          if (consumed <= slowPart) await new Promise((resolve) => setTimeout(resolve, 2));
        }

        expect(maxLead).toBeLessThanOrEqual(window + slack);
        expect(maxLead).toBeGreaterThanOrEqual(window / 2);
        expect(received).toHaveLength(total);
        expect(received.every((value, i) => value === i)).toBe(true);
        expect(flood.produced).toBe(total);
      });
    }
  });
}
