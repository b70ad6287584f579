/**
 * Scenario 6, overload: a burst of calls far beyond what one slow dealer can take, against a
 * router whose queue for the method is bounded. What does not fit is refused at once with
 * QueueFullError; everything that was queued completes; the router's memory grows by a bounded
 * amount per queued call.
 */
import { QueueFullError } from "../../../src/index.ts";
import { CallLedger, MemorySampler, percentile, ReplyTap } from "../lib/ledger.ts";
import { JsonChild } from "../lib/processes.ts";
import { Stage } from "../lib/stage.ts";
import { waitFor } from "../../helpers/wait.ts";

export interface OverloadOptions {
  calls: number;
  queueBound: number;
  /** Simulated work per call on the one dealer (it runs one call at a time). Default 0. */
  workMs?: number;
  progress?: (line: string) => void;
}

export interface OverloadFigures {
  calls: number;
  queueBound: number;
  completed: number;
  failed: Record<string, number>;
  lost: string[];
  hung: number;
  duplicateReplies: number;
  /**
   * A bystander client in its own process calling every 10 ms during the burst: how many of its
   * calls were refused, and how long a refusal took.
   */
  refusalMs: { refused: number; p50: number; p99: number; max: number };
  /** From the first call: until the last refusal arrived, and until the last queued call completed. */
  lastRefusalMs: number;
  drainMs: number;
  /**
   * Router RSS before the calls, once the queue was full (before the excess arrived), and at its
   * peak; the growth to a full queue divided by the calls it held.
   */
  routerRss: { before: number; atFullQueue: number; peak: number; queuedAtFull: number; bytesPerQueuedCall: number };
  clientPeakRss: number;
  leftInRouter: { queued: number; running: number };
}

export async function runOverload(options: OverloadOptions): Promise<OverloadFigures> {
  const workMs = options.workMs ?? 0;
  const progress = options.progress ?? (() => {});
  const stage = new Stage();
  try {
    const router = await stage.router({ maxQueueLength: options.queueBound });
    await stage.dealer(router.address, "SlowService");
    // Generous: the queue must drain inside it; a timeout here would be a lost call.
    const timeoutSeconds = 600;
    const client = await stage.client(router.address, { timeout: timeoutSeconds });
    const tap = ReplyTap.attach(client);
    // Warm the path so the baseline includes the runtime's steady state.
    const warmupCalls = 200;
    for (let i = 0; i < warmupCalls; i++) await client.invoke("SlowService.work", -1, 0);
    const memory = new MemorySampler({ router: () => router.rss(), client: () => process.memoryUsage().rss }, 100).start();
    const before = router.rss();

    const ledger = new CallLedger();
    const started = performance.now();
    let lastCompletedMs = 0;
    let lastRefusalMs = 0;
    const send = (from: number, to: number) => {
      for (let n = from; n < to; n++) {
        const call = client.invoke<number>("SlowService.work", n, workMs).then(
          (value) => {
            lastCompletedMs = performance.now() - started;
            return value;
          },
          (error: Error) => {
            if (error instanceof QueueFullError) lastRefusalMs = performance.now() - started;
            throw error;
          },
        );
        void ledger.track(call, (value) => (value === n ? true : `answered ${value}`), `call ${n}`);
      }
    };
    const monitor = await stage.client(router.address);
    // Phase 1: as many calls as the queue holds. Once the router has them all, its memory growth
    // is what a full queue costs.
    send(0, options.queueBound);
    await waitFor(async () => (await monitor.getRouterInfo()).totalRequests >= options.queueBound + warmupCalls, {
      timeoutMs: 60_000,
      message: `the router to receive the first ${options.queueBound} calls`,
    });
    const filled = await monitor.getRouterInfo();
    const atFull = router.rss();
    progress(`queue filled: ${filled.queuedRequests} queued, router ${Math.round(atFull / 2 ** 20)} MiB`);

    // Phase 2: the excess, all at once. Meanwhile a bystander client in its own process calls
    // every 10 ms (each with a 0.5 s timeout): how fast its refusals come back is what "refused at
    // once" means.
    const bystander = new JsonChild("bystander client", "test/chaos/fixtures/client-process.ts", [
      router.address,
      "SlowService.work",
      "[-1, 0]",
      "10",
      "0.5",
    ]);
    stage.children.add(bystander);
    await bystander.event((event) => event.event === "ready", 10_000, "the bystander client to connect");
    send(options.queueBound, options.calls);
    const ticker = setInterval(
      () => progress(`${ledger.completed} completed, ${ledger.failedTotal} refused; router ${Math.round(router.rss() / 2 ** 20)} MiB`),
      1000,
    );
    const hung = await ledger.settled(timeoutSeconds * 1000 + 30_000);
    clearInterval(ticker);
    bystander.kill("SIGKILL");
    memory.stop();
    // Refusals from the time the excess was sent until the last of it was answered.
    const refusalMs = bystander
      .named("call")
      .filter((event) => event.outcome === QueueFullError.name)
      .map((event) => event.ms as number);
    await bystander.exitedWithin(5_000);
    // The bystander's own queued calls go with its connection; then nothing may remain.
    let info = await client.getRouterInfo();
    await waitFor(
      async () => {
        info = await client.getRouterInfo();
        return info.queuedRequests === 0 && info.inProgressRequests === 0;
      },
      { timeoutMs: 5_000, message: "the router to hold no request once every call has ended" },
    ).catch(() => undefined); // Reported in leftInRouter, which the caller checks.
    const peak = memory.peak("router");
    return {
      calls: options.calls,
      queueBound: options.queueBound,
      completed: ledger.completed,
      failed: ledger.failedByClass(),
      lost: ledger.lost,
      hung,
      duplicateReplies: tap.duplicates.length,
      refusalMs: {
        refused: refusalMs.length,
        p50: percentile(refusalMs, 0.5),
        p99: percentile(refusalMs, 0.99),
        max: Math.max(0, ...refusalMs),
      },
      lastRefusalMs,
      drainMs: lastCompletedMs,
      routerRss: {
        before,
        atFullQueue: atFull,
        peak,
        queuedAtFull: filled.queuedRequests,
        bytesPerQueuedCall: (atFull - before) / Math.max(1, filled.queuedRequests),
      },
      clientPeakRss: memory.peak("client"),
      leftInRouter: { queued: info.queuedRequests, running: info.inProgressRequests },
    };
  } finally {
    await stage.dispose();
  }
}
