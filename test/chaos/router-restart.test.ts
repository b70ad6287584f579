/**
 * Scenario 3, router restart: the router process is killed (SIGKILL) with calls queued and in
 * flight, and started again on the same address. Calls lost with it fail with ConnectionError,
 * except those marked idempotent, which the client sends again and which then succeed; the
 * dealers register again by themselves; new calls succeed about a second after the restart (the
 * peers' longest reconnect interval).
 *
 *   ./node_modules/.bin/bun test test/chaos/router-restart.test.ts
 */
import { afterEach, expect, test } from "bun:test";
import { ConnectionError } from "../../src/index.ts";
import { RECONNECT_MAX_INTERVAL_MS } from "../../src/options.ts";
import { LOAD_SLACK_MS, waitFor } from "../helpers/wait.ts";
import { withCurveEverywhere } from "./lib/curve-env.ts";
import { CallLedger, ReplyTap } from "./lib/ledger.ts";
import { Stage } from "./lib/stage.ts";

const DEALERS = 3;
const SLOTS_PER_DEALER = 8;
const CALLS = 36;
const CALL_MS = 1500;
/** How long the router stays down in each round: restarted at once, then after an outage. */
const OUTAGES_MS = [0, 1500];
const ROUNDS = OUTAGES_MS.length;
/**
 * Peers retry a router that is away at least every RECONNECT_MAX_INTERVAL_MS, so they are back
 * (dealers registered, a new call answered) within that of its return, plus a connection's
 * handshake and a round trip: one more second on an idle machine, LOAD_SLACK_MS on a loaded one.
 */
const BACK_WITHIN_MS = RECONNECT_MAX_INTERVAL_MS + Math.max(1000, LOAD_SLACK_MS);

const stage = new Stage();
afterEach(() => stage.dispose());

test(
  `a router killed ${ROUNDS} times with calls queued and in flight: lost calls fail with ConnectionError, idempotent ones are resent and succeed, dealers re-register, new calls succeed within the peers' reconnect interval`,
  () => restartRounds("scenario 3 router restart"),
  120_000,
);

// Once more with CURVE on every connection (issue 13): every reconnect is a new CURVE handshake.
test(
  "with CURVE: the same restarts, the same guarantees",
  () => withCurveEverywhere(() => restartRounds("scenario 3 router restart, CURVE")),
  120_000,
);

async function restartRounds(label: string): Promise<void> {
  let router = await stage.router({ heartbeatTimeout: 2 });
  const address = router.address;
  const dealers = await Promise.all(
    Array.from({ length: DEALERS }, () => stage.dealer(address, "RestartService", { dealer: { maxConcurrent: SLOTS_PER_DEALER } })),
  );
  const client = await stage.client(address, { timeout: 20 });
  const tap = ReplyTap.attach(client);
  const figures: Record<string, unknown>[] = [];

  for (let round = 0; round < ROUNDS; round++) {
    const idempotent = new CallLedger();
    const plain = new CallLedger();
    const startedBefore = dealers.reduce((sum, dealer) => sum + dealer.named("started").length, 0);
    for (let i = 0; i < CALLS; i++) {
      const tag = `r${round}-${i}`;
      const isIdempotent = i % 2 === 0;
      const call = client.call<{ tag: string }>("RestartService.slow", [tag, CALL_MS], { idempotent: isIdempotent });
      (isIdempotent ? idempotent : plain).track(call, (value) => (value.tag === tag ? true : `answered ${JSON.stringify(value)}`), tag);
    }
    // Every slot busy, the rest queued at the router.
    await waitFor(
      () => dealers.reduce((sum, dealer) => sum + dealer.named("started").length, 0) - startedBefore >= DEALERS * SLOTS_PER_DEALER,
      {
        timeoutMs: 10_000,
        message: `${DEALERS * SLOTS_PER_DEALER} calls to be running on the dealers`,
      },
    );

    const registrations = dealers.map((dealer) => dealer.registrations);
    router.kill("SIGKILL");
    await router.exitedWithin(5_000);
    stage.forget(router);
    const killedAt = Date.now();
    // The outage is part of the injected fault (a schedule), not a wait for something to happen.
    if (OUTAGES_MS[round] > 0) await Bun.sleep(OUTAGES_MS[round]);
    router = await stage.router({ heartbeatTimeout: 2, address });
    const readyAt = router.events.find((event) => event.event === "ready")!.at as number;

    // New calls: the first success must come within BACK_WITHIN_MS of the restart.
    let firstSuccessMs: number | undefined;
    await waitFor(
      async () => {
        try {
          await client.call("RestartService.echo", ["after"], { timeout: 1 });
          firstSuccessMs = Date.now() - readyAt;
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 10_000, message: "a new call to succeed after the restart" },
    );
    const reregistered = await Promise.all(dealers.map((dealer, i) => dealer.registered(10_000, registrations[i] + 1)));
    const reregisteredMs = Math.max(...reregistered.map((event) => (event.at as number) - readyAt));

    const hung = (await idempotent.settled(30_000)) + (await plain.settled(30_000));
    const outcome = {
      round,
      downMs: readyAt - killedAt,
      firstNewCallMs: firstSuccessMs,
      dealersReregisteredMs: reregisteredMs,
      idempotent: {
        calls: idempotent.started,
        completed: idempotent.completed,
        failed: idempotent.failedByClass(),
        lost: idempotent.lost.length,
      },
      plain: { calls: plain.started, completed: plain.completed, failed: plain.failedByClass(), lost: plain.lost.length },
      hung,
    };
    figures.push(outcome);
    expect(hung).toBe(0);
    expect(idempotent.lost).toEqual([]);
    expect(plain.lost).toEqual([]);
    // Idempotent calls were sent again and succeeded: the restart was invisible to them.
    expect(idempotent.completed).toBe(CALLS / 2);
    // The others had been sent to a router that died: each either finished first or says so.
    expect(plain.completed + plain.failedWith(ConnectionError.name)).toBe(CALLS / 2);
    expect(plain.failedWith(ConnectionError.name)).toBeGreaterThan(0);
    expect(firstSuccessMs!).toBeLessThan(BACK_WITHIN_MS);
    expect(reregisteredMs).toBeLessThan(BACK_WITHIN_MS);
  }

  console.log(`[chaos] ${label}: ${JSON.stringify({ rounds: figures, duplicates: tap.duplicates.length })}`);
  expect(tap.duplicates).toEqual([]);
}

test("an idempotent call resent to a restarted router before its dealer is back waits for the dealer and succeeds", async () => {
  const first = await stage.router({ heartbeatTimeout: 2 });
  const address = first.address;
  const dealer = await stage.dealer(address, "RestartService");
  const client = await stage.client(address, { timeout: 20 });
  const call = client.call<{ tag: string }>("RestartService.slow", ["resent", 300], { idempotent: true });
  await dealer.event((event) => event.event === "started" && event.tag === "resent", 10_000, "the call to start");

  // The dealer cannot come back before the client: it is frozen while the router dies and returns.
  dealer.kill("SIGSTOP");
  first.kill("SIGKILL");
  await first.exitedWithin(5_000);
  stage.forget(first);
  const _second = await stage.router({ heartbeatTimeout: 2, address });
  await waitFor(async () => (await client.getRouterInfo()).totalRequests >= 1, {
    timeoutMs: 10_000,
    message: "the client to send the call again to the new router",
  });
  dealer.kill("SIGCONT");
  await dealer.registered(10_000, 2);
  expect(await waitFor(call, { timeoutMs: 10_000, message: "the resent call to complete once the dealer is back" })).toEqual({
    tag: "resent",
  });
}, 60_000);
