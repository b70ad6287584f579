/**
 * Scenario 1, dealer crashes under load: 4 dealer processes, 20,000 calls with 64 in flight from
 * 4 clients; every 2 s one dealer is killed with SIGKILL and restarted. Every call ends with its
 * correct result or a typed error, none hangs, none is answered twice; the router re-dispatches
 * what the dead dealers held. (`npm run soak` runs a longer variant.)
 *
 *   ./node_modules/.bin/bun test test/chaos/dealer-crashes.test.ts
 */
import { expect, test } from "bun:test";
import { withCurveEverywhere } from "./lib/curve-env.ts";
import { type DealerCrashFigures, runDealerCrashes } from "./scenarios/dealer-crashes.ts";

test("dealers killed with SIGKILL every 2 s under 64 calls in flight: every call ends with its result or a typed error, none lost, none hung, none answered twice", async () => {
  const figures = await runDealerCrashes({ calls: 20_000, workMs: 40 });
  console.log(`[chaos] scenario 1 dealer crashes: ${JSON.stringify({ ...figures, lost: figures.lost.length })}`);
  expectSound(figures);
}, 120_000);

// Once more with CURVE on every connection (issue 13). Kills stay 2 s apart: a restarted
// dealer's start-up and handshake can take over a second on a loaded machine, and with kills
// faster than restarts every dealer can be down at once (calls then fail NoSuchMethodError).
test("with CURVE: dealers killed with SIGKILL every 2 s under 64 calls in flight: the same guarantees", async () => {
  const figures = await withCurveEverywhere(() => runDealerCrashes({ calls: 16_000, workMs: 40 }));
  console.log(`[chaos] scenario 1 dealer crashes, CURVE: ${JSON.stringify({ ...figures, lost: figures.lost.length })}`);
  expectSound(figures);
}, 120_000);

function expectSound(figures: DealerCrashFigures): void {
  expect(figures.lost).toEqual([]);
  expect(figures.hung).toBe(0);
  expect(figures.duplicateReplies).toBe(0);
  expect(figures.completed + Object.values(figures.failed).reduce((a, b) => a + b, 0)).toBe(figures.calls);
  // The only failure a crash may cause: a request lost with its dealer after its one re-dispatch.
  expect(Object.keys(figures.failed).filter((name) => name !== "DealerLostError")).toEqual([]);
  // Dealers died holding calls, and the router ran them again rather than fail them.
  expect(figures.kills).toBeGreaterThanOrEqual(4);
  expect(figures.inFlightAtLoss).toBeGreaterThan(0);
  expect(figures.redispatched + (figures.failed.DealerLostError ?? 0)).toBe(figures.inFlightAtLoss);
  expect(figures.leftInRouter).toEqual({ queued: 0, running: 0 });
}
