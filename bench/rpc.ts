/**
 * Calls through the router: calls/s and p50/p99 latency for a trivial method, 1 and 2 dealers,
 * sequential and with 64 calls in flight, in both modes, next to a direct DEALER↔ROUTER echo on
 * the same sockets in the same run (the broker's own cost is the ratio).
 *
 *   npm run bench:rpc                 # writes its section of docs/benchmarks.md
 *   bun bench/rpc.ts --no-write --calls 5000
 *
 * Processes: the router, each dealer and the echo peer run as separate processes; the client
 * runs in this one. Everything on loopback TCP. The "one CPU" rows pin every process, this one
 * included, to CPU 0 with taskset: they show what a hop costs when it is a context switch
 * rather than the wake-up of another, idle CPU.
 */
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { ClientDealer, curveKeyPair, silentLogger } from "../src/index.ts";
import { Dealer } from "../src/zmtp/index.ts";
import { type Figures, medianOf as medianOfRuns, timedCalls } from "./load.ts";
import { startScraper } from "./scraper.ts";
import { machineLine, writeSection } from "./doc.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "20000" },
    "sequential-calls": { type: "string", default: "5000" },
    runs: { type: "string", default: "5" },
    "no-write": { type: "boolean", default: false },
  },
});
const CALLS = Number(values.calls);
const SEQUENTIAL = Number(values["sequential-calls"]);
const RUNS = Number(values.runs);
const IN_FLIGHT = 64;
const children: ReturnType<typeof Bun.spawn>[] = [];

async function spawnPeer(...args: string[]): Promise<string> {
  return (await spawnPeerLine(...args))[0];
}

/** The words after "ready" on the peer's first line: its address, then anything else it said. */
async function spawnPeerLine(...args: string[]): Promise<string[]> {
  const child = Bun.spawn([process.execPath, "bench/rpc-peer.ts", ...args], { stdout: "pipe", stderr: "inherit", env: { ...process.env } });
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

/** Sequential: one call at a time; latency of each. */
const sequential = (call: () => Promise<unknown>) => timedCalls(SEQUENTIAL, 1, call);
/** Pipelined: IN_FLIGHT callers, each starting its next call when the previous answers. */
const pipelined = (call: () => Promise<unknown>) => timedCalls(CALLS, IN_FLIGHT, call);
const medianOf = (run: () => Promise<Figures>) => medianOfRuns(RUNS, run);

/** The baseline: a Dealer calling a bare echoing Router, with per-request ids like a client's. */
async function directEcho(): Promise<{ seq: Figures; pipe: Figures }> {
  const address = await spawnPeer("echo");
  const serverKey = process.env.VOIDRAIL_CURVE_SERVER_KEY;
  const dealer = new Dealer(serverKey ? { curveServerKey: serverKey, curveSecretKey: curveKeyPair().secretKey } : {});
  dealer.connect(address);
  const waiting = new Map<number, () => void>();
  let nextId = 1;
  void (async () => {
    for await (const [id] of dealer) waiting.get(id.readUInt32BE(0))?.();
  })();
  const payload = Buffer.from(JSON.stringify(["hello"]));
  const call = () =>
    new Promise<void>((resolve) => {
      const id = nextId++;
      const idFrame = Buffer.alloc(4);
      idFrame.writeUInt32BE(id >>> 0);
      waiting.set(id >>> 0, () => {
        waiting.delete(id >>> 0);
        resolve();
      });
      void dealer.send([idFrame, payload]);
    });
  const result = { seq: await medianOf(() => sequential(call)), pipe: await medianOf(() => pipelined(call)) };
  dealer.close();
  return result;
}

/**
 * The floor: one round trip over plain TCP between two processes, no ZMTP, 20 bytes each way
 * (sequential only: a byte stream has no messages to count when pipelined).
 */
async function rawTcpPingPong(): Promise<Figures> {
  const address = await spawnPeer("tcp-echo");
  const port = Number(address.slice(address.lastIndexOf(":") + 1));
  let answered: (() => void) | undefined;
  const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data: () => answered?.() } });
  const message = Buffer.alloc(20, 0x61);
  const call = () =>
    new Promise<void>((resolve) => {
      answered = resolve;
      socket.write(message);
    });
  const result = await medianOf(() => sequential(call));
  socket.end();
  return result;
}

async function throughRouter(mode: string, dealers: number, thread = "thread", http = false): Promise<{ seq: Figures; pipe: Figures }> {
  const [address, httpUrl] = await spawnPeerLine("router", mode, ...(http ? ["http"] : []));
  // With the HTTP server on: /metrics scraped every second from another process, as Prometheus does.
  const scraper = http ? startScraper(`${httpUrl}/metrics`) : undefined;
  for (let i = 0; i < dealers; i++) await spawnPeer("dealer", address, thread);
  const client = new ClientDealer({ routerAddress: address, timeout: 60, logger: silentLogger });
  await client.connect();
  const call = () => client.invoke("BenchService.echo", "hello");
  const result = { seq: await medianOf(() => sequential(call)), pipe: await medianOf(() => pipelined(call)) };
  await scraper?.stop();
  await client.close();
  for (const child of children.splice(0)) child.kill();
  return result;
}

/**
 * Runs `measure` with CURVE on every connection: the peers (spawned now) and this process's
 * client read VOIDRAIL_CURVE_SECRET_KEY / VOIDRAIL_CURVE_SERVER_KEY.
 */
async function withCurve<T>(measure: () => Promise<T>): Promise<T> {
  const keys = curveKeyPair();
  process.env.VOIDRAIL_CURVE_SECRET_KEY = keys.secretKey;
  process.env.VOIDRAIL_CURVE_SERVER_KEY = keys.publicKey;
  try {
    return await measure();
  } finally {
    delete process.env.VOIDRAIL_CURVE_SECRET_KEY;
    delete process.env.VOIDRAIL_CURVE_SERVER_KEY;
  }
}

/** Pins this process (all its threads) and so every child spawned from now on to `cpuList`. */
function pinTo(cpuList: string): boolean {
  return spawnSync("taskset", ["-a", "-p", "-c", cpuList, String(process.pid)], { stdio: "ignore" }).status === 0;
}

const rows: string[] = [];
const format = (f: Figures) => `${Math.round(f.callsPerSecond).toLocaleString("en-US")} | ${f.p50.toFixed(0)} | ${f.p99.toFixed(0)}`;
const measured: Record<string, { seq: Figures; pipe: Figures }> = {};
function record(key: string, label: string, dealers: string, result: { seq: Figures; pipe: Figures }): void {
  measured[key] = result;
  rows.push(`| ${label} | ${dealers} | ${format(result.seq)} | ${format(result.pipe)} |`);
  console.error(
    `${label}, ${dealers}: seq p50 ${result.seq.p50.toFixed(0)} µs, 64 in flight ${Math.round(result.pipe.callsPerSecond)} calls/s`,
  );
}
try {
  const tcp = await rawTcpPingPong();
  for (const child of children.splice(0)) child.kill();
  rows.push(`| raw TCP ping-pong between two processes, no ZMTP (the floor for one round trip) | – | ${format(tcp)} | – | – | – |`);
  console.error(`raw TCP ping-pong: p50 ${tcp.p50.toFixed(0)} µs`);
  record("echo", "direct DEALER↔ROUTER echo (no broker)", "–", await directEcho());
  for (const child of children.splice(0)) child.kill();
  for (const mode of ["fifo", "load_balance"]) {
    for (const dealers of [1, 2])
      record(`${mode}-${dealers}`, `through the router, ${mode}`, String(dealers), await throughRouter(mode, dealers));
  }
  record("echo-curve", "direct DEALER↔ROUTER echo (no broker), **CURVE**", "–", await withCurve(directEcho));
  for (const child of children.splice(0)) child.kill();
  record(
    "load_balance-1-curve",
    "through the router, load_balance, **CURVE**",
    "1",
    await withCurve(() => throughRouter("load_balance", 1)),
  );
  // The HTTP row against a baseline measured beside it, not minutes earlier: three rounds of off
  // and on back to back (the order alternating), and the round with the median on/off ratio shown.
  const httpRounds: { off: { seq: Figures; pipe: Figures }; on: { seq: Figures; pipe: Figures }; ratio: number }[] = [];
  for (let round = 0; round < 3; round++) {
    const pair: Partial<Record<"off" | "on", { seq: Figures; pipe: Figures }>> = {};
    for (const http of round % 2 === 0 ? [false, true] : [true, false])
      pair[http ? "on" : "off"] = await throughRouter("load_balance", 1, "thread", http);
    const { off, on } = pair as Record<"off" | "on", { seq: Figures; pipe: Figures }>;
    httpRounds.push({ off, on, ratio: on.pipe.callsPerSecond / off.pipe.callsPerSecond });
  }
  const httpPair = [...httpRounds].sort((a, b) => a.ratio - b.ratio)[1];
  record("http-1", "through the router, load_balance, HTTP server on and /metrics scraped every second", "1", httpPair.on);
  record(
    "inline-1",
    "through the router, load_balance, dealer without heartbeat thread",
    "1",
    await throughRouter("load_balance", 1, "inline"),
  );
  const pinned = pinTo("0");
  if (pinned) {
    record("echo-one-cpu", "direct echo, all processes on one CPU", "–", await directEcho());
    for (const child of children.splice(0)) child.kill();
    record("one-cpu", "through the router, load_balance, all processes on one CPU", "1", await throughRouter("load_balance", 1));
    pinTo(`0-${cpus().length - 1}`);
  }
  const best = measured["load_balance-1"];
  const curve = measured["load_balance-1-curve"];
  const echoCurve = measured["echo-curve"];
  const kept = curve.pipe.callsPerSecond / best.pipe.callsPerSecond;
  const inline = measured["inline-1"];
  const withHttp = measured["http-1"];
  const echo = measured.echo;
  const oneCpu = measured["one-cpu"];
  const echoOneCpu = measured["echo-one-cpu"];
  const us = (value: number) => `${value.toFixed(0)} µs`;
  const perSecond = (f: Figures) => Math.round(f.callsPerSecond).toLocaleString("en-US");
  const section = [
    "## RPC through the router (bench/rpc.ts)",
    "",
    machineLine(),
    "",
    `A client calls a trivial method (\`echo("hello")\`) through a ServiceRouter. **Sequential**: ${SEQUENTIAL.toLocaleString("en-US")} calls one at a time. **64 in flight**: ${CALLS.toLocaleString("en-US")} calls from 64 concurrent callers, each starting its next call when the previous answers. Median of ${RUNS} runs after a warm-up. The router, each dealer and the echo peer are separate Bun processes; the client runs in the benchmark process. In fifo mode a dealer runs one call at a time (the seed's default); in load_balance mode up to 100. Dealers send their heartbeats from a worker thread over a second connection (the default) unless the row says otherwise; requests and replies never leave the dealer's main thread. The baseline is a bare Dealer↔Router echo on the same ZMTP sockets: the broker's cost is the ratio between the rows.`,
    "",
    "| path | dealers | sequential calls/s | p50 µs | p99 µs | 64 in flight calls/s | p50 µs | p99 µs |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `Targets (load_balance, 1 dealer, default settings): sequential p50 ≤ 150 µs — measured ${us(best.seq.p50)} (${best.seq.p50 <= 150 ? "met" : "missed"}); 64 in flight ≥ 50,000 calls/s — measured ${perSecond(best.pipe)} (${best.pipe.callsPerSecond >= 50_000 ? "met" : "missed"}). For scale: Moleculer publishes ~10,000 remote calls/s, NATS request-reply ~8,600/s.`,
    "",
    `**Where sequential time goes.** A call through the router makes four hops between processes (client → router → dealer → router → client); the direct echo makes two. On this machine a hop costs most when it wakes an idle CPU: the VM's kernel runs with guest halt-polling off (\`haltpoll.guest_halt_poll_ns=0\` on its command line), so an idle vCPU halts and waking it goes through the hypervisor. In this run a round trip over plain TCP between two processes, with no ZMTP at all, took ${us(tcp.p50)}, so four hops cannot take less than about ${us(2 * tcp.p50)}; the direct ZMTP echo took ${us(echo.seq.p50)}.${echoOneCpu ? ` With every process pinned to one CPU, where a hop is a plain context switch, the echo took ${us(echoOneCpu.seq.p50)} and the call through the router ${us(oneCpu.seq.p50)}.` : ""} The sequential target is within reach only where hops are cheap.`,
    "",
    `**Dealer without its heartbeat thread** (\`heartbeatThread: false\`), same run: sequential p50 ${us(inline.seq.p50)} vs ${us(best.seq.p50)} with it; ${perSecond(inline.pipe)} vs ${perSecond(best.pipe)} calls/s with 64 in flight. The thread only sends a BEAT per heartbeat interval, so it costs next to nothing; without it a dealer stops answering heartbeats while a method blocks its event loop, and a busy dealer declared dead gets its work run twice. (Until 2026-11-25 the dealer's whole connection lived on that thread and every request and reply crossed between threads: 432 µs and 27,898 calls/s in this table then.)`,
    "",
    `**HTTP server on** (\`http: { port }\`, another process fetching \`/metrics\` every second), measured in three rounds each beside a fresh run with the server off (the order alternating; the table's row is the round with the median ratio): ${perSecond(withHttp.pipe)} vs ${perSecond(httpPair.off.pipe)} calls/s with 64 in flight (${((httpPair.ratio - 1) * 100).toFixed(1)} %; the three rounds: ${httpRounds.map((r) => `${((r.ratio - 1) * 100).toFixed(1)} %`).join(", ")}; target: no drop over 5 %), sequential p50 ${us(withHttp.seq.p50)} vs ${us(httpPair.off.seq.p50)}. bench/http-overhead.ts runs longer rounds for a closer comparison.`,
    `**CURVE** (issue 13; every connection encrypted: client, router, dealer and its heartbeat connection), load_balance, 1 dealer, same run: 64 in flight ${perSecond(curve.pipe)} vs ${perSecond(best.pipe)} calls/s with NULL: CURVE keeps ${(100 * kept).toFixed(0)}% (aim: costs at most 40%, i.e. keeps ≥ 60% — ${kept >= 0.6 ? "met" : "missed"}); sequential p50 ${us(curve.seq.p50)} vs ${us(best.seq.p50)}. The direct echo keeps ${((100 * echoCurve.pipe.callsPerSecond) / echo.pipe.callsPerSecond).toFixed(0)}% under CURVE. A call crosses four connections, and on each its frames (a VoidRail message is 2-3 frames) are sealed by the sender and opened by the receiver: the router alone seals and opens ~8 frames per call, each a Salsa20 + Poly1305 pass in JavaScript (≈2 µs for a small frame on our own path, where a NULL router spends ~10-15 µs on a whole call). libzmq boxes each frame too (CURVE requires it, so frames cannot be merged), but in C with libsodium: its echo keeps ~90% under CURVE (bench:zmtp). The rest of the gap is what JavaScript arithmetic costs; a native or WASM libsodium would close it but is ruled out for the single binary. On this shared 2-core machine rows measured minutes apart move by tens of percent: compare the CURVE row with the NULL row above it, and rerun on a quiet machine.`,
    "",
    "**Throughput work so far** (each measured with this benchmark): frames pass through without Buffer wrapping; one heap-backed timer serves all call deadlines; the dealer's heartbeats moved to their own connection on a worker thread, so requests and replies no longer cross threads; a connection writes every 32 messages instead of once per tick, so the next process starts on a large batch early and both CPUs work at once; an AbortController is made only for methods that see a signal; receive loops drain what has arrived without a promise per message; routing keys are cached by frame identity. Where the CPU goes now, 64 in flight: router ~11-14 µs per call, client ~8-10, dealer ~7-9 (user + system, all its threads).",
    "",
    "Reproduce: `npm run bench:rpc` (options: `--calls 20000 --sequential-calls 5000 --runs 5 --no-write`).",
    "",
  ].join("\n");
  console.log(section);
  if (!values["no-write"]) writeSection("docs/benchmarks.md", section);
} finally {
  for (const child of children) child.kill();
}
process.exit(0);
