/**
 * What the router's HTTP server costs the call path: calls through the router (load_balance,
 * one dealer) with the HTTP server off, and on with a client scraping /metrics every second
 * (as Prometheus would, and the dashboard's feed running), in the same run. The two variants
 * alternate, round after round, so drift on a shared machine hits both alike. Besides calls/s it
 * reports the router process's CPU time per call (from /proc), which other load on the machine
 * disturbs far less than throughput.
 *
 *   npm run bench:http                  # writes its section of docs/benchmarks.md
 *   bun bench/http-overhead.ts --no-write --rounds 3
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ClientDealer, silentLogger } from "../src/index.ts";
import { RouterMetrics } from "../src/observability/router-metrics.ts";
import { type CallView, RouterEvents } from "../src/router/events.ts";
import { machineLine, writeSection } from "./doc.ts";
import { startScraper } from "./scraper.ts";

const { values } = parseArgs({
  options: {
    // 500,000 calls keep a round going for several seconds: several scrapes land inside it.
    calls: { type: "string", default: "500000" },
    "sequential-calls": { type: "string", default: "3000" },
    rounds: { type: "string", default: "6" },
    "no-write": { type: "boolean", default: false },
  },
});
const CALLS = Number(values.calls);
const SEQUENTIAL = Number(values["sequential-calls"]);
const ROUNDS = Number(values.rounds);
const IN_FLIGHT = 64;
const children: ReturnType<typeof Bun.spawn>[] = [];

async function spawnPeer(...args: string[]): Promise<string[]> {
  const child = Bun.spawn([process.execPath, "bench/rpc-peer.ts", ...args], { stdout: "pipe", stderr: "inherit" });
  children.push(child);
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 15_000;
  while (!text.includes("\n")) {
    if (Date.now() > deadline) throw new Error(`peer ${args.join(" ")} did not start`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`peer ${args.join(" ")} exited before it was ready`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.trim().split(" ").slice(1);
}

interface Figures {
  sequentialP50Us: number;
  callsPerSecond: number;
  /** The router process's user + system CPU time per call, 64 in flight. */
  routerCpuUsPerCall: number;
  scrapes: number;
}

/** User + system CPU seconds of process `pid` so far (Linux /proc; clock ticks of 1/100 s). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function measure(http: boolean): Promise<Figures> {
  const [address, httpUrl] = await spawnPeer("router", "load_balance", ...(http ? ["http"] : []));
  const routerPid = children[children.length - 1].pid;
  await spawnPeer("dealer", address);
  const client = new ClientDealer({ routerAddress: address, timeout: 60, logger: silentLogger });
  await client.connect();
  const call = () => client.invoke("BenchService.echo", "hello");
  for (let i = 0; i < 2000; i++) await call();
  // /metrics scraped every second from a process of its own, as Prometheus does (a poller in this
  // process changed how the client's sends batched, which the router's CPU per call showed).
  const scraper = http ? startScraper(`${httpUrl}${process.env.SCRAPE_PATH ?? "/metrics"}`) : undefined;
  const latencies: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t = performance.now();
    await call();
    latencies.push((performance.now() - t) * 1000);
  }
  latencies.sort((a, b) => a - b);
  let issued = 0;
  const cpuBefore = cpuSecondsOf(routerPid);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (issued < CALLS) {
        issued++;
        await call();
      }
    }),
  );
  const callsPerSecond = CALLS / ((performance.now() - start) / 1000);
  const routerCpuUsPerCall = ((cpuSecondsOf(routerPid) - cpuBefore) * 1e6) / CALLS;
  const scrapes = (await scraper?.stop()) ?? 0;
  await client.close();
  for (const child of children.splice(0)) child.kill();
  return { sequentialP50Us: latencies[latencies.length >> 1], callsPerSecond, routerCpuUsPerCall, scrapes };
}

const median = (list: number[]) => [...list].sort((a, b) => a - b)[list.length >> 1];

/**
 * What the metrics' listeners cost per call, in this process: a call's two events (dispatched,
 * finished) emitted a million times without and with RouterMetrics attached. The best of five
 * runs each: other load on the machine only ever adds time.
 */
function listenerNanosPerCall(): { without: number; with: number } {
  const events = new RouterEvents();
  const source = { events, info: () => [], waitingCalls: () => new Map(), offeredMethod: () => ({}), tasks: undefined };
  const call: { -readonly [K in keyof CallView]: CallView[K] } = {
    seq: 1,
    method: "BenchService.echo",
    clientId: 1,
    stream: false,
    state: "done",
    routerId: 5,
    dealer: null,
    outcome: "RESULT",
    receivedAt: 0,
    task: undefined,
    trace: undefined,
  };
  const run = (n: number) => {
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      call.receivedAt = performance.now() - 1;
      events.emit("call.dispatched", call);
      events.emit("call.finished", call);
    }
    return ((performance.now() - start) * 1e6) / n;
  };
  const best = () => Math.min(...Array.from({ length: 5 }, () => run(1_000_000)));
  const without = best();
  new RouterMetrics(source, { version: "bench" }).attach();
  return { without, with: best() };
}

try {
  const listeners = listenerNanosPerCall();
  console.error(`listeners: ${listeners.without.toFixed(0)} ns per call without metrics, ${listeners.with.toFixed(0)} ns with`);
  const off: Figures[] = [];
  const on: Figures[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which variant goes first.
    for (const http of round % 2 === 0 ? [false, true] : [true, false]) {
      const figures = await measure(http);
      (http ? on : off).push(figures);
      console.error(
        `round ${round + 1} http ${http ? "on " : "off"}: ${Math.round(figures.callsPerSecond)} calls/s, router ${figures.routerCpuUsPerCall.toFixed(1)} µs CPU per call, seq p50 ${figures.sequentialP50Us.toFixed(0)} µs${http ? `, ${figures.scrapes} scrapes` : ""}`,
      );
    }
  }
  const offRate = median(off.map((f) => f.callsPerSecond));
  const onRate = median(on.map((f) => f.callsPerSecond));
  const offP50 = median(off.map((f) => f.sequentialP50Us));
  const onP50 = median(on.map((f) => f.sequentialP50Us));
  const change = (onRate / offRate - 1) * 100;
  const offCpu = median(off.map((f) => f.routerCpuUsPerCall));
  const onCpu = median(on.map((f) => f.routerCpuUsPerCall));
  const cpuChange = (onCpu / offCpu - 1) * 100;
  // Each round's on/off pair ran back to back: their ratio cancels most of the drift between rounds.
  const pairedChange = (median(on.map((f, i) => f.callsPerSecond / off[i].callsPerSecond)) - 1) * 100;
  const signed = (value: number) => `${value >= 0 ? "+" : ""}${value.toFixed(1)} %`;
  const range = (list: Figures[]) =>
    `${Math.round(Math.min(...list.map((f) => f.callsPerSecond))).toLocaleString("en-US")}–${Math.round(Math.max(...list.map((f) => f.callsPerSecond))).toLocaleString("en-US")}`;
  const section = [
    "## The HTTP server's cost on calls (bench/http-overhead.ts)",
    "",
    machineLine(),
    "",
    `Calls through the router (load_balance, one dealer, trivial \`echo\`), HTTP server off vs on with another process fetching \`/metrics\` every second, in the same run: ${ROUNDS} rounds, the two variants alternating; medians. 64 in flight: ${CALLS.toLocaleString("en-US")} calls; sequential: ${SEQUENTIAL.toLocaleString("en-US")} calls. Router CPU: user + system time of the router process over the 64-in-flight phase, from /proc.`,
    "",
    "| HTTP server | 64 in flight calls/s (median; range of rounds) | router CPU µs per call | sequential p50 µs |",
    "|---|---:|---:|---:|",
    `| off | ${Math.round(offRate).toLocaleString("en-US")} (${range(off)}) | ${offCpu.toFixed(2)} | ${offP50.toFixed(0)} |`,
    `| on, /metrics scraped every second | ${Math.round(onRate).toLocaleString("en-US")} (${range(on)}) | ${onCpu.toFixed(2)} | ${onP50.toFixed(0)} |`,
    "",
    `With the server on: ${signed(change)} calls/s (median of the rounds' own on/off ratios: ${signed(pairedChange)}) and ${cpuChange >= 0 ? "+" : ""}${cpuChange.toFixed(1)} % router CPU per call (target: no drop over 5 %). On a machine shared with other work the calls/s of single rounds spread widely (the range above); the router's CPU time per call is steadier, but it moves with how well messages batch, which load changes too. The cost the metrics add to each call, measured alone in one process (a call's two events emitted a million times, best of five): ${(listeners.with - listeners.without).toFixed(0)} ns (${listeners.without.toFixed(0)} ns without the listeners, ${listeners.with.toFixed(0)} ns with), against ${offCpu.toFixed(1)} µs of router CPU per call: ${(((listeners.with - listeners.without) / 1000 / offCpu) * 100).toFixed(1)} %. Per call, the metrics do a Map lookup, one histogram increment per event and a counter; gauges are read at scrape time.`,
    "",
    "Reproduce: `npm run bench:http` (options: `--calls 500000 --sequential-calls 3000 --rounds 6 --no-write`).",
    "",
  ].join("\n");
  console.log(section);
  if (!values["no-write"]) writeSection("docs/benchmarks.md", section);
} finally {
  for (const child of children) child.kill();
}
process.exit(0);
