/**
 * Scenario 1, dealer crashes under load: dealer processes serve calls from several clients while,
 * on a fixed schedule, one dealer after another is killed with SIGKILL and a replacement started.
 * Every call must end with its correct result or a typed error; none may hang or be answered twice.
 */
import type { ClientDealer } from "../../../src/index.ts";
import { computeAnswer } from "../fixtures/services.ts";
import { CallLedger, MemorySampler, ReplyTap } from "../lib/ledger.ts";
import type { DealerChild } from "../lib/processes.ts";
import { routerLogFigures, Stage } from "../lib/stage.ts";

export interface DealerCrashOptions {
  calls: number;
  /** Calls in flight at any time, spread over the clients. Default 64. */
  inFlight?: number;
  clients?: number;
  dealers?: number;
  /** One dealer is killed (and a replacement started) this often. Default 2000. */
  killEveryMs?: number;
  /** Simulated work per call, so calls are in flight when a dealer dies. */
  workMs: number;
  /** Slots per dealer. Default: inFlight / dealers, so every call in flight is on a dealer. */
  maxConcurrent?: number;
  /** Per-call timeout (s); far above any call's real duration, so a timeout means a lost reply. */
  timeoutSeconds?: number;
  progress?: (line: string) => void;
}

export interface DealerCrashFigures {
  calls: number;
  completed: number;
  failed: Record<string, number>;
  /** Requests the router dispatched again after losing their dealer (its log). */
  redispatched: number;
  /** Requests the killed dealers held when they died (its log). */
  inFlightAtLoss: number;
  kills: number;
  lost: string[];
  hung: number;
  duplicateReplies: number;
  /** Router's queued and running requests once every call had ended (both must be 0). */
  leftInRouter: { queued: number; running: number };
  durationMs: number;
  peakRssBytes: { router: number; dealer: number; client: number };
}

export async function runDealerCrashes(options: DealerCrashOptions): Promise<DealerCrashFigures> {
  const inFlight = options.inFlight ?? 64;
  const clientCount = options.clients ?? 4;
  const dealerCount = options.dealers ?? 4;
  const killEveryMs = options.killEveryMs ?? 2000;
  const timeoutSeconds = options.timeoutSeconds ?? 30;
  const maxConcurrent = options.maxConcurrent ?? Math.ceil(inFlight / dealerCount);
  const progress = options.progress ?? (() => {});
  const stage = new Stage();
  try {
    const router = await stage.router({ heartbeatTimeout: 5 });
    const dealerOptions = { dealer: { maxConcurrent } };
    const dealers: DealerChild[] = await Promise.all(
      Array.from({ length: dealerCount }, () => stage.dealer(router.address, "LoadService", dealerOptions)),
    );
    const clients: ClientDealer[] = [];
    const taps: ReplyTap[] = [];
    for (let i = 0; i < clientCount; i++) {
      const client = await stage.client(router.address, { timeout: timeoutSeconds });
      clients.push(client);
      taps.push(ReplyTap.attach(client));
    }
    const memory = new MemorySampler(
      {
        router: () => router.rss(),
        dealer: () => Math.max(0, ...dealers.map((dealer) => dealer.rss())),
        client: () => process.memoryUsage().rss,
      },
      250,
    ).start();

    // The fault schedule: every killEveryMs the next dealer in turn dies; its replacement starts
    // as soon as it has exited.
    let kills = 0;
    let victim = 0;
    let killing = false;
    const replacements: Promise<void>[] = [];
    const killer = setInterval(() => {
      if (killing) return;
      killing = true;
      const slot = victim++ % dealers.length;
      const doomed = dealers[slot];
      doomed.kill("SIGKILL");
      kills++;
      const replaced = doomed.exited.then(() => {
        stage.forget(doomed);
        dealers[slot] = stage.spawnDealer(router.address, "LoadService", dealerOptions);
        killing = false;
        progress(`killed dealer ${doomed.pid} (kill ${kills}); replacement ${dealers[slot].pid}`);
      });
      replacements.push(replaced);
    }, killEveryMs);

    const ledger = new CallLedger();
    const started = performance.now();
    let next = 0;
    const perClient = Math.ceil(inFlight / clientCount);
    const callers: Promise<void>[] = [];
    for (const client of clients) {
      for (let slot = 0; slot < perClient; slot++) {
        callers.push(
          (async () => {
            while (next < options.calls) {
              const n = next++;
              await ledger.track(
                client.invoke<{ n: number; digest: number }>("LoadService.compute", n, options.workMs),
                (value) =>
                  value.n === n && value.digest === computeAnswer(n).digest ? true : `call ${n} answered ${JSON.stringify(value)}`,
                `call ${n}`,
              );
              if (n % 5000 === 0) progress(`${n} calls issued, ${ledger.completed} completed`);
            }
          })(),
        );
      }
    }
    // Every call has a client-side deadline of timeoutSeconds: past it (and a margin) a call is hung.
    const hardDeadlineMs = Math.ceil(options.calls / inFlight) * (options.workMs + 50) + timeoutSeconds * 1000 + 30_000;
    const hung = await ledger.settled(hardDeadlineMs);
    const durationMs = performance.now() - started;
    clearInterval(killer);
    // With every call settled the callers have returned (a hung call leaves its caller waiting).
    if (hung === 0) await Promise.all(callers);
    await Promise.all(replacements);
    memory.stop();

    const routerInfo = await clients[0].getRouterInfo();
    const fromLog = routerLogFigures(router);
    return {
      calls: options.calls,
      completed: ledger.completed,
      failed: ledger.failedByClass(),
      redispatched: fromLog.redispatched,
      inFlightAtLoss: fromLog.inFlightAtLoss,
      kills,
      lost: ledger.lost,
      hung,
      duplicateReplies: taps.reduce((sum, tap) => sum + tap.duplicates.length, 0),
      leftInRouter: { queued: routerInfo.queuedRequests, running: routerInfo.inProgressRequests },
      durationMs,
      peakRssBytes: { router: memory.peak("router"), dealer: memory.peak("dealer"), client: memory.peak("client") },
    };
  } finally {
    await stage.dispose();
  }
}
