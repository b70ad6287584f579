/**
 * The soak and the full-size chaos scenarios (docs/reliability.md):
 *
 *   npm run soak                              # scenario 8 (1,000,000 calls), then full-size 1, 5 and 6
 *   bun bench/soak.ts --calls 100000          # a shorter soak
 *   bun bench/soak.ts --only 8 --no-write     # one scenario, figures on stdout only
 *
 * Scenario 8: 1,000,000 calls through the router over a sustained run, 9 in 10 unary and 1 in 10
 * a stream of 10 items, from 4 clients with 64 calls in flight, served by 2 dealers. The RSS of
 * the router, both dealers and the client process is sampled every second; after warm-up (the
 * first fifth of the calls) none may grow by more than 10 %. Every call must end with its correct
 * result: none lost, none hung, none answered twice.
 *
 * Full sizes: scenario 1 with 100,000 calls (5x the CI run) and a dealer killed every 2 s;
 * scenario 5 with a 1 GiB stream; scenario 6 with 100,000 calls against a dealer that takes 1 ms
 * per call (the CI run's dealer does no work).
 *
 * The router, the dealers and the bystander client are separate Bun processes; the clients run
 * in this one. Without --no-write the figures replace the "Latest soak run" section of
 * docs/reliability.md. Exits 1 if any scenario broke its promise (lost, hung, duplicate, growth).
 */
import { parseArgs } from "node:util";
import type { ClientDealer } from "../src/index.ts";
import { computeAnswer } from "../test/chaos/fixtures/services.ts";
import { CallLedger, MemorySampler, mib, ReplyTap } from "../test/chaos/lib/ledger.ts";
import { routerLogFigures, Stage } from "../test/chaos/lib/stage.ts";
import { runDealerCrashes } from "../test/chaos/scenarios/dealer-crashes.ts";
import { runOverload } from "../test/chaos/scenarios/overload.ts";
import { runSlowConsumer } from "../test/chaos/scenarios/slow-consumer.ts";
import { machineLine, writeSection } from "./doc.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "1000000" },
    only: { type: "string", default: "8,1,5,6" },
    "no-write": { type: "boolean", default: false },
  },
});
const CALLS = Number(values.calls);
const ONLY = new Set(values.only!.split(",").map((item) => item.trim()));
const startedAt = Date.now();

function log(line: string): void {
  console.error(`[soak ${((Date.now() - startedAt) / 1000).toFixed(0).padStart(5)} s] ${line}`);
}

interface SoakFigures {
  calls: number;
  unary: number;
  streams: number;
  streamItems: number;
  completed: number;
  failed: Record<string, number>;
  lost: string[];
  hung: number;
  duplicateReplies: number;
  redispatched: number;
  durationMs: number;
  callsPerSecond: number;
  rss: Record<string, { atWarmup: number; atEnd: number; peak: number; growth: number }>;
}

const STREAM_ITEMS = 10;
const IN_FLIGHT = 64;
const CLIENTS = 4;
const GROWTH_LIMIT = 0.1;

/** Scenario 8. */
async function soak(calls: number): Promise<SoakFigures> {
  const stage = new Stage();
  try {
    const router = await stage.router({ heartbeatTimeout: 5 });
    const dealers = [
      await stage.dealer(router.address, "LoadService", { dealer: { maxConcurrent: 32 } }),
      await stage.dealer(router.address, "LoadService", { dealer: { maxConcurrent: 32 } }),
    ];
    const clients: ClientDealer[] = [];
    const taps: ReplyTap[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const client = await stage.client(router.address, { timeout: 60 });
      clients.push(client);
      // Constant memory: the soak measures growth, and must not cause any itself.
      taps.push(ReplyTap.attach(client, { exact: false }));
    }
    const memory = new MemorySampler(
      {
        router: () => router.rss(),
        "dealer 1": () => dealers[0].rss(),
        "dealer 2": () => dealers[1].rss(),
        client: () => process.memoryUsage().rss,
      },
      1000,
    ).start();

    const ledger = new CallLedger();
    let next = 0;
    let unary = 0;
    let streams = 0;
    let streamItems = 0;
    let warmupEndedMs = 0;
    const warmupCalls = Math.floor(calls / 5);
    const started = performance.now();
    const progress = setInterval(() => {
      const elapsed = (performance.now() - started) / 1000;
      log(
        `scenario 8: ${ledger.completed.toLocaleString("en-US")} of ${calls.toLocaleString("en-US")} calls (${Math.round(ledger.completed / elapsed)}/s); router ${mib(router.rss())}, dealers ${mib(dealers[0].rss())} / ${mib(dealers[1].rss())}, client ${mib(process.memoryUsage().rss)}`,
      );
    }, 10_000);
    const perClient = IN_FLIGHT / CLIENTS;
    await Promise.all(
      clients.flatMap((client) =>
        Array.from({ length: perClient }, async () => {
          while (next < calls) {
            const n = next++;
            if (n === warmupCalls) warmupEndedMs = memory.samples.at(-1)?.atMs ?? 0;
            if (n % 10 === 9) {
              streams++;
              await ledger.track(
                (async () => {
                  let k = 0;
                  for await (const item of client.stream<{ n: number; k: number }>("LoadService.series", n, STREAM_ITEMS)) {
                    if (item.n !== n || item.k !== k) throw new Error(`stream ${n} item ${k} was ${JSON.stringify(item)}`);
                    k++;
                  }
                  streamItems += k;
                  return k;
                })(),
                (count) => (count === STREAM_ITEMS ? true : `stream ${n} ended after ${count} items`),
                `stream ${n}`,
              );
            } else {
              unary++;
              await ledger.track(
                client.invoke<{ n: number; digest: number }>("LoadService.compute", n, 0),
                (value) =>
                  value.n === n && value.digest === computeAnswer(n).digest ? true : `call ${n} answered ${JSON.stringify(value)}`,
                `call ${n}`,
              );
            }
          }
        }),
      ),
    );
    const hung = await ledger.settled(90_000);
    const durationMs = performance.now() - started;
    clearInterval(progress);
    memory.stop();
    const rss: SoakFigures["rss"] = {};
    for (const name of ["router", "dealer 1", "dealer 2", "client"]) {
      const growth = memory.growth(name, warmupEndedMs);
      rss[name] = { ...growth, peak: memory.peak(name, warmupEndedMs) };
    }
    return {
      calls,
      unary,
      streams,
      streamItems,
      completed: ledger.completed,
      failed: ledger.failedByClass(),
      lost: ledger.lost,
      hung,
      duplicateReplies: taps.reduce((sum, tap) => sum + tap.duplicates.length, 0),
      redispatched: routerLogFigures(router).redispatched,
      durationMs,
      callsPerSecond: calls / (durationMs / 1000),
      rss,
    };
  } finally {
    await stage.dispose();
  }
}

const results: { scenario: string; passed: boolean; figures: unknown; line: string }[] = [];
const count = (n: number) => n.toLocaleString("en-US");

if (ONLY.has("8")) {
  log(`scenario 8: soak of ${count(CALLS)} calls`);
  const f = await soak(CALLS);
  const worst = Math.max(...Object.values(f.rss).map((r) => r.growth));
  const passed = f.lost.length === 0 && f.hung === 0 && f.duplicateReplies === 0 && f.completed === f.calls && worst < GROWTH_LIMIT;
  const rssText = Object.entries(f.rss)
    .map(([name, r]) => `${name} ${mib(r.atWarmup)} → ${mib(r.atEnd)} (${(r.growth * 100).toFixed(1)} %, peak ${mib(r.peak)})`)
    .join("; ");
  results.push({
    scenario: "8",
    passed,
    figures: { ...f, lost: f.lost.slice(0, 20) },
    line: `| 8. Soak | ${count(f.calls)} calls (${count(f.unary)} unary, ${count(f.streams)} streams of ${STREAM_ITEMS}), 2 dealers, 64 in flight, ${(f.durationMs / 60_000).toFixed(1)} min at ${count(Math.round(f.callsPerSecond))} calls/s | ${count(f.completed)} | ${Object.keys(f.failed).length === 0 ? "none" : JSON.stringify(f.failed)} | ${f.redispatched} | ${f.lost.length} | ${f.hung} | ${f.duplicateReplies} | RSS after warm-up → end: ${rssText} |`,
  });
  log(`scenario 8: ${passed ? "passed" : "FAILED"}: ${JSON.stringify({ ...f, lost: f.lost.slice(0, 5) })}`);
}

if (ONLY.has("1")) {
  const calls = 100_000;
  log(`scenario 1 at full size: ${count(calls)} calls, a dealer killed every 2 s`);
  const f = await runDealerCrashes({ calls, workMs: 40, progress: (line) => log(`scenario 1: ${line}`) });
  const failed = Object.values(f.failed).reduce((a, b) => a + b, 0);
  const passed = f.lost.length === 0 && f.hung === 0 && f.duplicateReplies === 0 && f.completed + failed === f.calls;
  results.push({
    scenario: "1",
    passed,
    figures: { ...f, lost: f.lost.slice(0, 20) },
    line: `| 1. Dealer crashes (full) | ${count(f.calls)} calls, 64 in flight, 4 dealers; ${f.kills} SIGKILLs (one every 2 s), ${(f.durationMs / 1000).toFixed(0)} s | ${count(f.completed)} | ${failed === 0 ? "none" : JSON.stringify(f.failed)} | ${f.redispatched} (of ${f.inFlightAtLoss} held by killed dealers) | ${f.lost.length} | ${f.hung} | ${f.duplicateReplies} | router ${mib(f.peakRssBytes.router)}, dealer ${mib(f.peakRssBytes.dealer)}, client ${mib(f.peakRssBytes.client)} |`,
  });
  log(`scenario 1: ${passed ? "passed" : "FAILED"}: ${JSON.stringify({ ...f, lost: f.lost.slice(0, 5) })}`);
}

if (ONLY.has("5")) {
  const totalBytes = 1024 * 1024 * 1024;
  log("scenario 5 at full size: a 1 GiB stream read slowly");
  const f = await runSlowConsumer({ totalBytes, readDelayMs: 1, progress: (line) => log(`scenario 5: ${line}`) });
  const passed = f.error === undefined && f.received === f.chunks && f.outOfOrder === 0 && f.duplicateReplies === 0;
  results.push({
    scenario: "5",
    passed,
    figures: f,
    line: `| 5. Slow consumer (full) | 1 GiB stream, ${count(f.chunks)} chunks of 64 KiB, read at ${f.consumerMBps.toFixed(0)} MiB/s | ${count(f.received)} chunks, in order | ${f.error ?? "none"} | – | ${f.chunks - f.received} | 0 | ${f.duplicateReplies} | growth after the first 10 %: router ${mib(f.rssBytes.router.growth)} (peak ${mib(f.rssBytes.router.peak)}), dealer ${mib(f.rssBytes.dealer.growth)} (peak ${mib(f.rssBytes.dealer.peak)}) |`,
  });
  log(`scenario 5: ${passed ? "passed" : "FAILED"}: ${JSON.stringify(f)}`);
}

if (ONLY.has("6")) {
  log("scenario 6 at full size: 100,000 calls, queue bound 10,000, a dealer taking 1 ms per call");
  const f = await runOverload({ calls: 100_000, queueBound: 10_000, workMs: 1, progress: (line) => log(`scenario 6: ${line}`) });
  const refused = f.failed.QueueFullError ?? 0;
  const passed =
    f.lost.length === 0 && f.hung === 0 && f.duplicateReplies === 0 && f.completed + refused === f.calls && f.completed >= f.queueBound;
  results.push({
    scenario: "6",
    passed,
    figures: { ...f, lost: f.lost.slice(0, 20) },
    line: `| 6. Overload (full) | ${count(f.calls)} calls at once, queue bound ${count(f.queueBound)}, one dealer at 1 ms per call | ${count(f.completed)} (drained in ${(f.drainMs / 1000).toFixed(1)} s) | QueueFullError ${count(refused)} (a bystander's refusals: p50 ${f.refusalMs.p50.toFixed(0)} ms, max ${f.refusalMs.max.toFixed(0)} ms) | – | ${f.lost.length} | ${f.hung} | ${f.duplicateReplies} | router ${mib(f.routerRss.before)} → ${mib(f.routerRss.atFullQueue)} with ${count(f.routerRss.queuedAtFull)} queued (${(f.routerRss.bytesPerQueuedCall / 1024).toFixed(1)} KiB per queued call), peak ${mib(f.routerRss.peak)} |`,
  });
  log(`scenario 6: ${passed ? "passed" : "FAILED"}: ${JSON.stringify({ ...f, lost: f.lost.slice(0, 5) })}`);
}

const allPassed = results.every((result) => result.passed);
const section = [
  "## Latest soak run (bench/soak.ts)",
  "",
  `${machineLine()} Run: \`npm run soak\`${CALLS === 1_000_000 ? "" : ` with --calls ${CALLS}`}, ${((Date.now() - startedAt) / 60_000).toFixed(0)} min in all. Outcome: ${allPassed ? "every promise kept" : "FAILED (see below)"}.`,
  "",
  "| scenario | what ran | completed | failed (typed) | re-dispatched | lost | hung | duplicate replies | memory |",
  "|---|---|---:|---|---:|---:|---:|---:|---|",
  ...results.map((result) => result.line),
  "",
  "Raw figures:",
  "",
  "```json",
  JSON.stringify(Object.fromEntries(results.map((result) => [result.scenario, result.figures]))),
  "```",
  "",
].join("\n");
console.log(section);
if (!values["no-write"]) writeSection("docs/reliability.md", section);
process.exit(allPassed ? 0 : 1);
