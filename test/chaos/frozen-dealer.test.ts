/**
 * Scenario 2, frozen dealer: a dealer process is stopped (SIGSTOP) in the middle of a call. The
 * router must declare it dead within heartbeatTimeout + one heartbeat interval and complete the
 * call on another dealer; when the frozen process is resumed (SIGCONT) its late answer must not
 * reach the client as a second reply.
 *
 *   ./node_modules/.bin/bun test test/chaos/frozen-dealer.test.ts
 */
import { afterEach, expect, test } from "bun:test";
import { CallLedger, ReplyTap } from "./lib/ledger.ts";
import { Stage } from "./lib/stage.ts";
import { waitFor, withinLoaded } from "../helpers/wait.ts";
import { connectionTimings } from "../../src/router/connection-timings.ts";

const HEARTBEAT_TIMEOUT_S = 1;
/** The router PINGs each peer every heartbeatIntervalMs: a quarter of the timeout (ServiceRouter's rule). */
const { heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS } = connectionTimings(HEARTBEAT_TIMEOUT_S);
/**
 * Scheduling slack on the router's own clock: its heartbeat tick may run up to one more interval
 * late on a loaded machine. The silence is the one the router states when it drops the dealer, so
 * the test process's own delays (between SIGSTOP and reading the log) do not count.
 */
const TICK_SLACK_MS = HEARTBEAT_INTERVAL_MS;
/** Timers never fire early; this much below the rule would mean something else dropped the dealer. */
const TIMER_GRANULARITY_MS = 20;
const ROUNDS = 3;

const stage = new Stage();
afterEach(() => stage.dispose());

test(`a dealer frozen mid-call ${ROUNDS} times: declared dead within heartbeatTimeout + 1 interval each time, the call completes elsewhere, SIGCONT brings no second reply`, async () => {
  const router = await stage.router({ heartbeatTimeout: HEARTBEAT_TIMEOUT_S });
  const client = await stage.client(router.address, { timeout: 20 });
  const tap = ReplyTap.attach(client);
  const ledger = new CallLedger();
  const deadAfterMs: number[] = [];
  /** The silence the router stated when it dropped the frozen dealer ("peer silent for N ms"). */
  const silentMs: number[] = [];

  for (let round = 0; round < ROUNDS; round++) {
    const frozen = await stage.dealer(router.address, "FreezeService", { hang: true });
    const tag = `round-${round}`;
    const call = client.invoke<{ tag: string; pid: number }>("FreezeService.job", tag);
    await frozen.event((event) => event.event === "started" && event.tag === tag, 10_000, `the frozen-to-be dealer to start ${tag}`);
    const rescuer = await stage.dealer(router.address, "FreezeService", { hang: false });

    const frozenDealerId = frozen.dealerId!;
    frozen.kill("SIGSTOP");
    const frozenAt = Date.now();
    const result = await waitFor(call, { timeoutMs: 10_000, message: `${tag} to complete on the rescuing dealer` });
    expect(result).toEqual({ tag, pid: rescuer.pid });
    await ledger.track(Promise.resolve(result), () => true, tag);

    const left = await router.event(
      (event) => event.event === "log" && typeof event.message === "string" && event.message.startsWith(`dealer ${frozenDealerId} left`),
      withinLoaded(HEARTBEAT_TIMEOUT_MS + HEARTBEAT_INTERVAL_MS),
      `the router to declare ${frozenDealerId} dead`,
    );
    deadAfterMs.push((left.at as number) - frozenAt);
    const stated = /peer silent for (\d+) ms/.exec(left.message as string);
    if (!stated) throw new Error(`the router dropped ${frozenDealerId} for another reason: ${left.message}`);
    silentMs.push(Number(stated[1]));

    // Thawed, it notices its connection is gone, ends the old call and registers anew.
    frozen.kill("SIGCONT");
    await frozen.event((event) => event.event === "finished" && event.tag === tag, 10_000, `the thawed dealer to end ${tag}`);
    await frozen.registered(10_000, 2);
    // Any late reply of the thawed dealer was sent before its new registration: a round trip to the
    // router now is answered after it.
    await client.getRouterInfo();
    rescuer.kill("SIGKILL");
    frozen.kill("SIGKILL");
    await Promise.all([rescuer.exitedWithin(5_000), frozen.exitedWithin(5_000)]);
    stage.forget(rescuer);
    stage.forget(frozen);
  }

  console.log(
    `[chaos] scenario 2 frozen dealer: ${JSON.stringify({ rounds: ROUNDS, deadAfterMs, silentMs, duplicates: tap.duplicates.length, completed: ledger.completed })}`,
  );
  expect(tap.duplicates).toEqual([]);
  expect(ledger.completed).toBe(ROUNDS);
  for (const ms of silentMs) {
    // Not before a timeout's worth of silence, and no later than the timeout plus one interval
    // (plus the router's own scheduling delay).
    expect(ms).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS - TIMER_GRANULARITY_MS);
    expect(ms).toBeLessThanOrEqual(HEARTBEAT_TIMEOUT_MS + HEARTBEAT_INTERVAL_MS + TICK_SLACK_MS);
  }
}, 60_000);
