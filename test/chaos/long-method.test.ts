/**
 * Scenario 4, long CPU-bound method: a method computes for 30 s without yielding its event loop,
 * under a router heartbeat timeout of 2 s. The dealer keeps answering heartbeats (its connection
 * lives on a worker thread), is never declared dead, and the call succeeds, once.
 *
 *   ./node_modules/.bin/bun test test/chaos/long-method.test.ts
 */
import { afterEach, expect, test } from "bun:test";
import { waitFor } from "../helpers/wait.ts";
import { MemorySampler, ReplyTap } from "./lib/ledger.ts";
import { Stage } from "./lib/stage.ts";

const SPIN_MS = 30_000;
const HEARTBEAT_TIMEOUT_S = 2;

const stage = new Stage();
afterEach(() => stage.dispose());

test(
  `a ${SPIN_MS / 1000} s synchronous method under a ${HEARTBEAT_TIMEOUT_S} s heartbeat timeout: the dealer stays registered and the call succeeds`,
  async () => {
    const router = await stage.router({ heartbeatTimeout: HEARTBEAT_TIMEOUT_S });
    const dealer = await stage.dealer(router.address, "SpinService");
    const client = await stage.client(router.address, { timeout: SPIN_MS / 1000 + 30 });
    const tap = ReplyTap.attach(client);
    const dealerId = (await client.discoverClusters())[0].id;
    const memory = new MemorySampler({ dealer: () => dealer.rss(), router: () => router.rss() }, 1000).start();

    const started = performance.now();
    const call = client.invoke<{ rounds: number; pid: number }>("SpinService.spin", SPIN_MS);
    await dealer.event((event) => event.event === "spinning", 10_000, "the dealer to start spinning");
    // While it spins, the router keeps seeing it: same registration, busy, recently heard from.
    const midway = await client.discoverClusters();
    const result = await waitFor(call, { timeoutMs: SPIN_MS + 20_000, message: "the spinning call to return" });
    const elapsedMs = performance.now() - started;
    memory.stop();

    const after = await client.discoverClusters();
    const losses = router.logs("warn").filter((event) => String(event.message).includes("left"));
    console.log(
      `[chaos] scenario 4 long method: ${JSON.stringify({ spinMs: SPIN_MS, elapsedMs: Math.round(elapsedMs), rounds: result.rounds, registrations: dealer.registrations, losses: losses.length, peakRss: { dealer: memory.peak("dealer"), router: memory.peak("router") } })}`,
    );
    expect(result.pid).toBe(dealer.pid);
    expect(result.rounds).toBeGreaterThan(0);
    expect(elapsedMs).toBeGreaterThanOrEqual(SPIN_MS);
    expect(midway.map((entry) => [entry.id, entry.state, entry.busy, entry.load])).toEqual([[dealerId, "active", true, 1]]);
    expect(after.map((entry) => entry.id)).toEqual([dealerId]);
    expect(after[0].counts).toEqual({ dispatched: 1, succeeded: 1, failed: 0 });
    expect(losses).toEqual([]);
    expect(dealer.registrations).toBe(1);
    expect(tap.duplicates).toEqual([]);
  },
  SPIN_MS + 60_000,
);
