/**
 * ZMTP echo benchmark: our `voidrail/zmtp` against libzmq (npm `zeromq`, zeromq.js v6), on loopback.
 *
 *   npm run bench:zmtp                       # every pair, 5 runs each, updates docs/benchmarks.md
 *   npm run bench:zmtp -- --runs 3 --no-write --pairs ours-bun,zeromq-node
 *
 * Two measurements per pair, each repeated `--runs` times after a warm-up (the median is reported):
 * - pipelined: a Dealer sends `--messages` messages of `--size` bytes as fast as send() lets it while
 *   a second loop receives the echoes from a Router that sends every message back; msg/s is
 *   messages / (first send → last echo).
 * - sequential: `--round-trips` times send one message and wait for its echo; p50/p99 in µs.
 *
 * This one file is every part of the benchmark. Run under Bun without `--role` it is the
 * orchestrator: it bundles itself for Node (`bun build --target=node` into .tmp/), then starts one
 * child process per pair (one runtime: Router and Dealer share that process) or two (runtimes
 * differ: the Router process, then the Dealer process that measures). With `--role` it is such a
 * child. Every child and every run has a deadline, so a stuck pair fails instead of hanging.
 *
 * libzmq's ROUTER silently drops messages to a peer over its send high-water mark (1000 by
 * default), which would leave the pipelined Dealer waiting forever for lost echoes. Every zeromq.js
 * Router here is created with `mandatory: true`: at the high-water mark send() then waits for room
 * (zeromq.js polls for writability) instead of dropping, like our Router always does. The
 * high-water marks stay at their defaults (1000) on both sides and the Dealer keeps no window of
 * its own: how many messages are in flight is decided by the sockets' backpressure alone.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync, mkdirSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { curveKeyPair, Dealer, Router } from "../src/zmtp/index.ts";
import { CurveMessageBox } from "../src/zmtp/curve/message-box.ts";
import { writeSection } from "./doc.ts";

// ---------------------------------------------------------------- options

interface BenchOptions {
  /** Messages per pipelined run. */
  messages: number;
  /** Payload bytes per message. */
  size: number;
  /** Round trips per sequential run. */
  roundTrips: number;
  /** Measured runs per pair (after one warm-up). */
  runs: number;
  /** Deadline for one run, pipelined or sequential, in milliseconds. */
  runTimeoutMs: number;
}

const { values: args } = parseArgs({
  options: {
    role: { type: "string" },
    impl: { type: "string" },
    transport: { type: "string" },
    endpoint: { type: "string" },
    "lifetime-ms": { type: "string" },
    messages: { type: "string", default: "200000" },
    size: { type: "string", default: "100" },
    "round-trips": { type: "string", default: "20000" },
    runs: { type: "string", default: "5" },
    "run-timeout-ms": { type: "string", default: "60000" },
    pairs: { type: "string" },
    curve: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    doc: { type: "string", default: "docs/benchmarks.md" },
  },
  strict: true,
});

const benchOptions: BenchOptions = {
  messages: positiveInt("messages", args.messages!),
  size: positiveInt("size", args.size!),
  roundTrips: positiveInt("round-trips", args["round-trips"]!),
  runs: positiveInt("runs", args.runs!),
  runTimeoutMs: positiveInt("run-timeout-ms", args["run-timeout-ms"]!),
};

function positiveInt(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer, got ${text}`);
  return value;
}

// ---------------------------------------------------------------- the sockets under test

type Impl = "ours" | "zeromq" | "pyzmq";

/** With --curve, our sockets run CURVE with these keys (one process: both ends know them). */
const curveKeys = args.curve ? { server: curveKeyPair(), client: curveKeyPair() } : undefined;
const curveServerOptions = () => (curveKeys ? { curveServer: true, curveSecretKey: curveKeys.server.secretKey } : {});
const curveClientOptions = () =>
  curveKeys ? { curveServerKey: curveKeys.server.publicKey, curveSecretKey: curveKeys.client.secretKey } : {};

/** What a measuring loop needs from a Dealer, whichever library provides it. */
interface EchoClient {
  send(payload: Buffer): Promise<void>;
  receive(): Promise<Buffer[]>;
  close(): void;
}

/** A Router that sends every message back to its sender until closed. */
interface EchoServer {
  endpoint: string;
  close(): void;
}

type Zmq = typeof import("zeromq");

async function loadZeromq(): Promise<Zmq> {
  if (typeof Bun !== "undefined") throw new Error("zeromq.js crashes under Bun (oven-sh/bun#18546): run the zeromq roles under Node");
  return await import("zeromq");
}

function ourTransport(): "bun" | "node" {
  const wanted = args.transport ?? (typeof Bun !== "undefined" ? "bun" : "node");
  if (wanted !== "bun" && wanted !== "node") throw new Error(`--transport must be bun or node, got ${wanted}`);
  if (wanted === "bun" && typeof Bun === "undefined") throw new Error("transport bun needs the Bun runtime");
  return wanted;
}

async function startEchoServer(impl: Impl): Promise<EchoServer> {
  if (impl === "ours") {
    const router = new Router({ transport: ourTransport(), ...curveServerOptions() });
    await router.bind("tcp://127.0.0.1:0");
    void (async () => {
      for await (const message of router) await router.send(message);
    })().catch((error) => fail(`echo router: ${error}`));
    return { endpoint: router.lastEndpoint!, close: () => router.close() };
  }
  const zmq = await loadZeromq();
  // mandatory: wait at the send high-water mark instead of silently dropping (see the header).
  const router = new zmq.Router({ mandatory: true, linger: 0 });
  await router.bind("tcp://127.0.0.1:*");
  void (async () => {
    // zeromq.js allows one send() at a time per socket: each echo is awaited before the next receive.
    for await (const message of router) await router.send(message);
  })().catch((error) => {
    if (!router.closed) fail(`echo router: ${error}`);
  });
  return { endpoint: router.lastEndpoint!, close: () => router.close() };
}

async function startEchoClient(impl: Impl, endpoint: string): Promise<EchoClient> {
  if (impl === "ours") {
    const dealer = new Dealer({ transport: ourTransport(), ...curveClientOptions() });
    dealer.connect(endpoint);
    return { send: (payload) => dealer.send(payload), receive: () => dealer.receive(), close: () => dealer.close() };
  }
  const zmq = await loadZeromq();
  const dealer = new zmq.Dealer({ linger: 0 });
  dealer.connect(endpoint);
  return { send: (payload) => dealer.send(payload), receive: () => dealer.receive(), close: () => dealer.close() };
}

// ---------------------------------------------------------------- measuring (runs in the Dealer's process)

interface RunResult {
  kind: "pipelined" | "sequential";
  warmup: boolean;
  /** pipelined: messages per second (echo received). sequential: round trips per second. */
  perSecond: number;
  p50Us?: number;
  p99Us?: number;
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function pipelined(client: EchoClient, count: number, payload: Buffer): Promise<number> {
  const started = performance.now();
  const receiving = (async () => {
    let last: Buffer[] = [];
    for (let received = 0; received < count; received++) last = await client.receive();
    assertEcho(last, payload);
  })();
  // One send at a time, each awaited: zeromq.js forbids concurrent send() calls, and for our
  // sockets an awaited send() is the backpressure-respecting way to send "as fast as allowed".
  for (let sent = 0; sent < count; sent++) await client.send(payload);
  await receiving;
  return count / ((performance.now() - started) / 1000);
}

async function sequential(
  client: EchoClient,
  count: number,
  payload: Buffer,
): Promise<{ perSecond: number; p50Us: number; p99Us: number }> {
  const samplesUs = new Float64Array(count);
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const sentAt = performance.now();
    await client.send(payload);
    const reply = await client.receive();
    samplesUs[i] = (performance.now() - sentAt) * 1000;
    if (i === 0) assertEcho(reply, payload);
  }
  const elapsedS = (performance.now() - started) / 1000;
  samplesUs.sort();
  return { perSecond: count / elapsedS, p50Us: percentile(samplesUs, 0.5), p99Us: percentile(samplesUs, 0.99) };
}

/** A cheap check that echoes are what was sent, so a fast but broken path cannot pass as a result. */
function assertEcho(reply: Buffer[], payload: Buffer): void {
  if (reply.length !== 1 || !reply[0].equals(payload)) {
    throw new Error(`echo differs from what was sent: ${reply.length} frame(s), first ${reply[0]?.length ?? 0} bytes`);
  }
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
}

/** Warm-up, then `runs` pipelined and `runs` sequential runs; each result goes to stdout as it comes. */
async function measure(client: EchoClient, options: BenchOptions): Promise<void> {
  const payload = Buffer.alloc(options.size, 0x61);
  const timeout = options.runTimeoutMs;
  // Warm-up: connect, let the JITs compile the hot paths. Reported, but not counted.
  const warmPipelined = await withDeadline(pipelined(client, Math.min(options.messages, 50_000), payload), timeout, "pipelined warm-up");
  emit({ result: { kind: "pipelined", warmup: true, perSecond: warmPipelined } satisfies RunResult });
  const warmSequential = await withDeadline(
    sequential(client, Math.min(options.roundTrips, 5_000), payload),
    timeout,
    "sequential warm-up",
  );
  emit({ result: { kind: "sequential", warmup: true, ...warmSequential } satisfies RunResult });
  for (let run = 0; run < options.runs; run++) {
    const perSecond = await withDeadline(pipelined(client, options.messages, payload), timeout, `pipelined run ${run + 1}`);
    emit({ result: { kind: "pipelined", warmup: false, perSecond } satisfies RunResult });
    const latency = await withDeadline(sequential(client, options.roundTrips, payload), timeout, `sequential run ${run + 1}`);
    emit({ result: { kind: "sequential", warmup: false, ...latency } satisfies RunResult });
  }
}

// ---------------------------------------------------------------- child roles

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function fail(message: string): never {
  process.stderr.write(`bench child: ${message}\n`);
  process.exit(1);
}

function runtimeDescription(): Record<string, string> {
  return typeof Bun !== "undefined" ? { runtime: "bun", version: Bun.version } : { runtime: "node", version: process.versions.node };
}

function parseImpl(): "ours" | "zeromq" {
  if (args.impl !== "ours" && args.impl !== "zeromq") fail(`--impl must be ours or zeromq, got ${args.impl}`);
  return args.impl;
}

async function zeromqVersion(impl: Impl): Promise<string | undefined> {
  return impl === "zeromq" ? (await loadZeromq()).version : undefined;
}

/** Router and Dealer in this one process. */
async function rolePair(): Promise<void> {
  const impl = parseImpl();
  const server = await startEchoServer(impl);
  const client = await startEchoClient(impl, server.endpoint);
  emit({ hello: { ...runtimeDescription(), libzmq: await zeromqVersion(impl), transport: impl === "ours" ? ourTransport() : undefined } });
  await measure(client, benchOptions);
  client.close();
  server.close();
  emit({ done: true });
  process.exit(0);
}

/** The echo Router, alone in its process: runs until stdin closes or its lifetime ends. */
async function roleRouter(): Promise<void> {
  const impl = parseImpl();
  const lifetimeMs = positiveInt("lifetime-ms", args["lifetime-ms"] ?? "600000");
  const server = await startEchoServer(impl);
  setTimeout(() => fail(`router still running after its ${lifetimeMs} ms lifetime`), lifetimeMs).unref();
  process.stdin.on("end", () => {
    server.close();
    process.exit(0);
  });
  process.stdin.resume();
  emit({ ready: true, endpoint: server.endpoint, ...runtimeDescription(), libzmq: await zeromqVersion(impl) });
}

/** The measuring Dealer, alone in its process, connected to a Router started by the orchestrator. */
async function roleDealer(): Promise<void> {
  const impl = parseImpl();
  if (!args.endpoint) fail("--endpoint is required for --role dealer");
  const client = await startEchoClient(impl, args.endpoint);
  emit({ hello: { ...runtimeDescription(), libzmq: await zeromqVersion(impl), transport: impl === "ours" ? ourTransport() : undefined } });
  await measure(client, benchOptions);
  client.close();
  emit({ done: true });
  process.exit(0);
}

/** What CURVE costs beyond a small message's rate: handshakes, and bytes of a big message. */
interface CurveCosts {
  handshakeMs: { curve: number; null: number };
  /** One 16 MiB frame through a MESSAGE box, median MB/s (10^6 bytes). */
  seal16MiBMBps: number;
  open16MiBMBps: number;
  /** A 16 MiB message Dealer → Router → Dealer in one process: bytes both ways / round trip. */
  echo16MiBMBps: { curve: number; null: number };
}

const BIG = 16 * 1024 * 1024;

/** Handshake time (connect() to the handshake event) and 16 MiB figures, CURVE next to NULL. */
async function roleCurveCosts(): Promise<void> {
  const server = curveKeyPair();
  const handshakes = async (curve: boolean): Promise<number> => {
    const router = new Router(curve ? { curveServer: true, curveSecretKey: server.secretKey } : {});
    await router.bind("tcp://127.0.0.1:0");
    const samples: number[] = [];
    for (let i = 0; i < 40; i++) {
      const dealer = new Dealer(curve ? { curveServerKey: server.publicKey, curveSecretKey: curveKeyPair().secretKey } : {});
      const started = performance.now();
      const done = new Promise<void>((resolveDone) => dealer.events.once("handshake", () => resolveDone()));
      dealer.connect(router.lastEndpoint!);
      await withDeadline(done, 10_000, "a handshake");
      samples.push(performance.now() - started);
      dealer.close();
    }
    router.close();
    return median(samples.slice(5));
  };
  const key = new Uint8Array(32).fill(7);
  const sealer = new CurveMessageBox(key, false, 3, 1);
  const opener = new CurveMessageBox(key, true, 2, 2);
  const sealRates: number[] = [];
  const openRates: number[] = [];
  for (let run = 0; run < 5; run++) {
    const body = Buffer.allocUnsafe(sealer.overhead + BIG);
    body.fill(0x61, sealer.overhead);
    let started = performance.now();
    sealer.seal(body, 0);
    sealRates.push(BIG / 1e6 / ((performance.now() - started) / 1000));
    started = performance.now();
    opener.open(body);
    openRates.push(BIG / 1e6 / ((performance.now() - started) / 1000));
  }
  const echo = async (curve: boolean): Promise<number> => {
    const router = new Router(curve ? { curveServer: true, curveSecretKey: server.secretKey } : {});
    await router.bind("tcp://127.0.0.1:0");
    void (async () => {
      for await (const message of router) await router.send(message);
    })().catch(() => {});
    const dealer = new Dealer(curve ? { curveServerKey: server.publicKey, curveSecretKey: curveKeyPair().secretKey } : {});
    dealer.connect(router.lastEndpoint!);
    const payload = Buffer.alloc(BIG, 0x62);
    const rates: number[] = [];
    for (let run = 0; run < 4; run++) {
      const started = performance.now();
      await dealer.send(payload);
      const [reply] = await withDeadline(dealer.receive(), 60_000, "a 16 MiB echo");
      if (reply.length !== BIG) throw new Error(`16 MiB echo came back as ${reply.length} bytes`);
      if (run > 0) rates.push((2 * BIG) / 1e6 / ((performance.now() - started) / 1000));
    }
    dealer.close();
    router.close();
    return median(rates);
  };
  const costs: CurveCosts = {
    handshakeMs: { curve: await handshakes(true), null: await handshakes(false) },
    seal16MiBMBps: median(sealRates),
    open16MiBMBps: median(openRates),
    echo16MiBMBps: { curve: await echo(true), null: await echo(false) },
  };
  emit({ costs });
  emit({ done: true });
  process.exit(0);
}

// ---------------------------------------------------------------- orchestrator

const HERE = typeof import.meta.dir === "string" ? import.meta.dir : dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const NODE = process.env.VOIDRAIL_NODE || "node";
const NODE_BUNDLE = join(ROOT, ".tmp/bench-zmtp.mjs");
/** Debian's python3, where python3-zmq (libzmq with libsodium, so CURVE) is installed. */
const PYTHON = process.env.VOIDRAIL_PYTHON || "/usr/bin/python3";
const SECTION_HEADING = "## ZMTP echo (bench/zmtp.ts)";

/** How to start one end: a command line under Bun (this file), Node (the bundle) or Python (pyzmq). */
interface Side {
  runtime: "bun" | "node" | "python";
  impl: Impl;
  /** CURVE on this pair's connection. */
  curve?: boolean;
}

interface Pair {
  id: string;
  label: string;
  dealer: Side;
  router: Side;
}

const PAIRS: Pair[] = [
  {
    id: "ours-bun",
    label: "ours on Bun ↔ ours on Bun",
    dealer: { runtime: "bun", impl: "ours" },
    router: { runtime: "bun", impl: "ours" },
  },
  {
    id: "ours-node",
    label: "ours on Node ↔ ours on Node",
    dealer: { runtime: "node", impl: "ours" },
    router: { runtime: "node", impl: "ours" },
  },
  {
    id: "zeromq-node",
    label: "zeromq.js on Node ↔ zeromq.js on Node (libzmq)",
    dealer: { runtime: "node", impl: "zeromq" },
    router: { runtime: "node", impl: "zeromq" },
  },
  {
    id: "ours-bun-curve",
    label: "ours on Bun ↔ ours on Bun, **CURVE**",
    dealer: { runtime: "bun", impl: "ours", curve: true },
    router: { runtime: "bun", impl: "ours", curve: true },
  },
  {
    id: "pyzmq",
    label: "pyzmq ↔ pyzmq (libzmq, Python)",
    dealer: { runtime: "python", impl: "pyzmq" },
    router: { runtime: "python", impl: "pyzmq" },
  },
  {
    id: "pyzmq-curve",
    label: "pyzmq ↔ pyzmq (libzmq), **CURVE**",
    dealer: { runtime: "python", impl: "pyzmq", curve: true },
    router: { runtime: "python", impl: "pyzmq", curve: true },
  },
  {
    id: "ours-bun-dealer",
    label: "our Dealer on Bun → zeromq.js Router on Node",
    dealer: { runtime: "bun", impl: "ours" },
    router: { runtime: "node", impl: "zeromq" },
  },
  {
    id: "ours-bun-router",
    label: "zeromq.js Dealer on Node → our Router on Bun",
    dealer: { runtime: "node", impl: "zeromq" },
    router: { runtime: "bun", impl: "ours" },
  },
];

interface PairResult {
  pair: Pair;
  processes: 1 | 2;
  pipelined: number[];
  sequentialPerSecond: number[];
  p50Us: number[];
  p99Us: number[];
  warmup: { pipelined?: number; p50Us?: number };
  libzmq?: string;
  error?: string;
}

function commandFor(side: Side, role: "pair" | "router" | "dealer", extra: string[]): [string, string[]] {
  const common = [
    "--role",
    role,
    "--impl",
    side.impl,
    "--messages",
    String(benchOptions.messages),
    "--size",
    String(benchOptions.size),
    "--round-trips",
    String(benchOptions.roundTrips),
    "--runs",
    String(benchOptions.runs),
    "--run-timeout-ms",
    String(benchOptions.runTimeoutMs),
    ...(side.impl === "ours" ? ["--transport", side.runtime] : []),
    ...(side.curve ? ["--curve"] : []),
    ...extra,
  ];
  if (side.runtime === "python") return [PYTHON, [join(ROOT, "bench/pyzmq-echo.py"), ...common]];
  return side.runtime === "bun" ? [BUN, [join(ROOT, "bench/zmtp.ts"), ...common]] : [NODE, [NODE_BUNDLE, ...common]];
}

/** Deadline for a whole measuring child: warm-up plus every run, each at most runTimeoutMs. */
function childDeadlineMs(): number {
  return (2 + 2 * benchOptions.runs) * benchOptions.runTimeoutMs + 30_000;
}

interface Child {
  process: ChildProcess;
  lines: AsyncIterableIterator<string>;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startChild(command: string, argv: string[], stdin: "pipe" | "ignore"): Child {
  const child = spawn(command, argv, { cwd: ROOT, stdio: [stdin, "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const exited = new Promise<number | null>((resolveExit) => {
    child.once("error", (error) => {
      stderr += `\ncannot start ${command}: ${error.message}`;
      resolveExit(-1);
    });
    child.once("close", (code) => resolveExit(code));
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { process: child, lines, stderr: () => stderr, exited };
}

/** Reads a measuring child's JSON lines into `result` until it reports done, exits, or passes its deadline. */
async function collect(child: Child, result: PairResult, what: string): Promise<void> {
  const reading = (async () => {
    for await (const line of child.lines) {
      const message = JSON.parse(line) as { hello?: { libzmq?: string }; result?: RunResult; done?: boolean };
      if (message.hello?.libzmq) result.libzmq = message.hello.libzmq;
      const run = message.result;
      if (run?.kind === "pipelined") {
        if (run.warmup) result.warmup.pipelined = run.perSecond;
        else result.pipelined.push(run.perSecond);
        process.stdout.write(`  ${run.warmup ? "warm-up " : ""}pipelined ${fmtInt(run.perSecond)} msg/s\n`);
      } else if (run?.kind === "sequential") {
        if (run.warmup) result.warmup.p50Us = run.p50Us;
        else {
          result.sequentialPerSecond.push(run.perSecond);
          result.p50Us.push(run.p50Us!);
          result.p99Us.push(run.p99Us!);
        }
        process.stdout.write(
          `  ${run.warmup ? "warm-up " : ""}sequential p50 ${run.p50Us!.toFixed(1)} µs, p99 ${run.p99Us!.toFixed(1)} µs, ${fmtInt(run.perSecond)} rt/s\n`,
        );
      }
      if (message.done) return;
    }
    throw new Error(`${what} ended without finishing`);
  })();
  const code = await withDeadline(
    reading.then(() => child.exited),
    childDeadlineMs(),
    what,
  ).catch((error: Error) => {
    child.process.kill("SIGKILL");
    throw new Error(`${error.message}\n${child.stderr().trim()}`);
  });
  if (code !== 0) throw new Error(`${what} exited with ${code}\n${child.stderr().trim()}`);
}

async function runPair(pair: Pair): Promise<PairResult> {
  const sameRuntime = pair.dealer.runtime === pair.router.runtime && pair.dealer.impl === pair.router.impl;
  const result: PairResult = {
    pair,
    processes: sameRuntime ? 1 : 2,
    pipelined: [],
    sequentialPerSecond: [],
    p50Us: [],
    p99Us: [],
    warmup: {},
  };
  process.stdout.write(`${pair.label} (${result.processes === 1 ? "one process" : "two processes"})\n`);
  if (sameRuntime) {
    const [command, argv] = commandFor(pair.dealer, "pair", []);
    await collect(startChild(command, argv, "ignore"), result, pair.id);
    return result;
  }
  const [routerCommand, routerArgv] = commandFor(pair.router, "router", ["--lifetime-ms", String(childDeadlineMs() + 10_000)]);
  const router = startChild(routerCommand, routerArgv, "pipe");
  try {
    const first = await withDeadline(router.lines.next(), 20_000, `${pair.id} router start`);
    if (first.done) throw new Error(`${pair.id} router exited before it was ready\n${router.stderr().trim()}`);
    const ready = JSON.parse(first.value) as { endpoint: string; libzmq?: string };
    if (ready.libzmq) result.libzmq = ready.libzmq;
    const [dealerCommand, dealerArgv] = commandFor(pair.dealer, "dealer", ["--endpoint", ready.endpoint]);
    await collect(startChild(dealerCommand, dealerArgv, "ignore"), result, `${pair.id} dealer`);
  } finally {
    router.process.stdin!.end();
    const stopped = await Promise.race([router.exited, new Promise((r) => setTimeout(() => r("late"), 5_000))]);
    if (stopped === "late") router.process.kill("SIGKILL");
  }
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function fmtInt(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function commandOutput(command: string, argv: string[]): string {
  const out = spawnSync(command, argv, { encoding: "utf8" });
  return out.status === 0 ? out.stdout.trim() : "unknown";
}

function bundleForNode(): void {
  mkdirSync(dirname(NODE_BUNDLE), { recursive: true });
  const built = spawnSync(BUN, ["build", join(ROOT, "bench/zmtp.ts"), "--target=node", "--external=zeromq", `--outfile=${NODE_BUNDLE}`], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`bun build failed:\n${built.stdout}\n${built.stderr}`);
}

/** Runs the curve-costs child; undefined (and a line saying why) when it fails. */
async function measureCurveCosts(): Promise<CurveCosts | undefined> {
  process.stdout.write("CURVE costs (handshake, 16 MiB)\n");
  const child = startChild(BUN, [join(ROOT, "bench/zmtp.ts"), "--role", "curve-costs"], "ignore");
  try {
    let costs: CurveCosts | undefined;
    await withDeadline(
      (async () => {
        for await (const line of child.lines) {
          const message = JSON.parse(line) as { costs?: CurveCosts; done?: boolean };
          if (message.costs) costs = message.costs;
          if (message.done) return;
        }
      })(),
      300_000,
      "curve-costs",
    );
    if (costs) process.stdout.write(`  ${JSON.stringify(costs)}\n`);
    return costs;
  } catch (error) {
    process.stdout.write(`  FAILED: ${(error as Error).message}\n${child.stderr()}\n`);
    child.process.kill("SIGKILL");
    return undefined;
  }
}

/** The CURVE lines of the section: its price next to NULL's, ours and libzmq's, and the aims. */
function renderCurve(results: PairResult[], costs: CurveCosts | undefined): string[] {
  const find = (id: string) => results.find((r) => r.pair.id === id && !r.error);
  const ours = find("ours-bun");
  const oursCurve = find("ours-bun-curve");
  const py = find("pyzmq");
  const pyCurve = find("pyzmq-curve");
  const lines: string[] = [];
  const share = (curve: PairResult, plain: PairResult) => median(curve.pipelined) / median(plain.pipelined);
  if (ours && oursCurve) {
    lines.push(
      `**CURVE vs NULL, pipelined, same run:** ours ${fmtInt(median(oursCurve.pipelined))} vs ${fmtInt(median(ours.pipelined))} msg/s (CURVE keeps ${(100 * share(oursCurve, ours)).toFixed(0)}%); sequential p50 ${median(oursCurve.p50Us).toFixed(1)} vs ${median(ours.p50Us).toFixed(1)} µs.` +
        (py && pyCurve
          ? ` libzmq (pyzmq): ${fmtInt(median(pyCurve.pipelined))} vs ${fmtInt(median(py.pipelined))} msg/s (keeps ${(100 * share(pyCurve, py)).toFixed(0)}%), p50 ${median(pyCurve.p50Us).toFixed(1)} vs ${median(py.p50Us).toFixed(1)} µs. Our CURVE ÷ libzmq's CURVE: ${(median(oursCurve.pipelined) / median(pyCurve.pipelined)).toFixed(1)}x.`
          : ""),
      "",
    );
  }
  if (costs) {
    lines.push(
      "CURVE beyond small messages (ours on Bun, one process; `--role curve-costs`):",
      "",
      "| measure | CURVE | NULL | aim | met |",
      "|---|---:|---:|---|---|",
      `| handshake, connect() to ready (median of 35) | ${costs.handshakeMs.curve.toFixed(2)} ms | ${costs.handshakeMs.null.toFixed(2)} ms | < 5 ms | ${costs.handshakeMs.curve < 5 ? "yes" : "no"} |`,
      `| seal one 16 MiB frame | ${fmtInt(costs.seal16MiBMBps)} MB/s | – | ≥ 150 MB/s | ${costs.seal16MiBMBps >= 150 ? "yes" : "no"} |`,
      `| open one 16 MiB frame | ${fmtInt(costs.open16MiBMBps)} MB/s | – | | |`,
      `| 16 MiB echo, bytes both ways / round trip | ${fmtInt(costs.echo16MiBMBps.curve)} MB/s | ${fmtInt(costs.echo16MiBMBps.null)} MB/s | | |`,
      "",
      "The handshake row runs both ends in one thread, so it counts both sides' X25519 operations (4 each, plus a short-term key pair: ~0.4-0.6 ms apiece here); between two machines each side does half the work at the same time. On this shared machine it has measured 3.3 to 5.1 ms from run to run.",
      "",
    );
  }
  return lines;
}

function renderSection(results: PairResult[], machine: Record<string, string>, costs?: CurveCosts): string {
  const o = benchOptions;
  const lines: string[] = [
    SECTION_HEADING,
    "",
    `Measured ${machine.date} on ${machine.cpu}, ${machine.cores} cores, ${machine.memory} memory; ${machine.node}, ${machine.bun}, libzmq ${machine.libzmq} (npm zeromq ${machine.zeromq}). Loopback TCP (tcp://127.0.0.1).`,
    "",
    `Echo of ${o.size}-byte single-frame messages: a Dealer talks to a Router that sends every message back. **Pipelined**: the Dealer sends ${fmtInt(o.messages)} messages as fast as send() allows (each send awaited, no window of its own) while a concurrent loop receives the echoes; msg/s = messages / (first send → last echo). **Sequential**: ${fmtInt(o.roundTrips)} round trips, one at a time; p50/p99 of the round-trip time (each column the median of the runs' values). Every figure is the median of ${o.runs} runs after a warm-up run, all pairs in one invocation of the script.`,
    "",
    "| pair | processes | pipelined msg/s | (min – max) | sequential round trips/s | p50 µs | p99 µs |",
    "|---|---|---:|---|---:|---:|---:|",
  ];
  for (const r of results) {
    const where = r.processes === 1 ? "one (both ends)" : "two (Router, Dealer)";
    if (r.error) {
      lines.push(`| ${r.pair.label} | ${where} | failed | | | | |`);
      continue;
    }
    lines.push(
      `| ${r.pair.label} | ${where} | ${fmtInt(median(r.pipelined))} | ${fmtInt(Math.min(...r.pipelined))} – ${fmtInt(Math.max(...r.pipelined))} | ${fmtInt(median(r.sequentialPerSecond))} | ${median(r.p50Us).toFixed(1)} | ${median(r.p99Us).toFixed(1)} |`,
    );
  }
  lines.push("");
  const ours = results.find((r) => r.pair.id === "ours-bun" && !r.error);
  const reference = results.find((r) => r.pair.id === "zeromq-node" && !r.error);
  if (ours && reference) {
    const ratio = median(ours.pipelined) / median(reference.pipelined);
    const p50 = median(ours.p50Us);
    lines.push(
      `**Ours on Bun vs zeromq.js on Node, pipelined throughput: ${ratio.toFixed(1)}x** (${fmtInt(median(ours.pipelined))} / ${fmtInt(median(reference.pipelined))} msg/s, same run).`,
      "",
      "Targets for ours on Bun:",
      "",
      `| target | measured | met |`,
      `|---|---|---|`,
      `| pipelined ≥ 300,000 msg/s | ${fmtInt(median(ours.pipelined))} msg/s | ${median(ours.pipelined) >= 300_000 ? "yes" : "no"} |`,
      `| sequential p50 ≤ 60 µs | ${p50.toFixed(1)} µs | ${p50 <= 60 ? "yes" : "no"} |`,
      `| ≥ 5x zeromq.js on Node (pipelined) | ${ratio.toFixed(1)}x | ${ratio >= 5 ? "yes" : "no"} |`,
      "",
    );
  }
  lines.push(...renderCurve(results, costs));
  const failed = results.filter((r) => r.error);
  if (failed.length > 0) {
    lines.push("Failed pairs:", "");
    for (const r of failed) lines.push(`- ${r.pair.label}: ${r.error!.split("\n")[0]}`);
    lines.push("");
  }
  lines.push(
    "How it runs:",
    "",
    `- Where both ends are one runtime (the first three rows), Router and Dealer share one process: for our sockets one JavaScript thread does both ends' work. Where the runtimes differ (the mixed rows), the Router and the Dealer are separate processes with a thread each, so the mixed rows are not directly comparable with the one-process rows. zeromq.js does its socket I/O on libzmq's background thread besides the JavaScript thread, so a zeromq.js process keeps two threads busy; with ${machine.cores} cores the rows involving it vary most from run to run (see min – max).`,
    '- Ours on Bun uses Bun sockets (`transport: "bun"`); ours on Node runs the same code bundled with `bun build --target=node` into `.tmp/bench-zmtp.mjs`, on node:net (`transport: "node"`).',
    "- zeromq.js v6 allows one pending send() per socket, so every send is awaited before the next (our sockets are driven the same way). Its Routers are created with `mandatory: true`: libzmq's ROUTER otherwise silently drops messages to a peer over its send high-water mark (default 1000), and the pipelined Dealer would wait forever for the lost echoes; with `mandatory` send() waits for room instead, which is what our Router always does. High-water marks are left at 1000 everywhere.",
    "- Between invocations of the script the figures move by tens of percent on a small virtual machine like this one (ours on Bun has ranged from about 600,000 to 1,000,000 msg/s here). Compare rows of one invocation; that is why the ratio above is taken from one run.",
    "- Each run has a deadline (`--run-timeout-ms`, default 60 s) and each child process a deadline covering all its runs; a pair that misses one is reported as failed.",
    "- CURVE rows (issue 13): the same echo with CurveZMQ on the connection: every frame sealed by the sender and opened by the receiver (XSalsa20-Poly1305 from @noble/ciphers, pure TypeScript), in this one JavaScript thread for both ends. The pyzmq rows are libzmq driven from Python (a poll loop in the main thread, the echo Router on a second thread): Python's per-message cost bounds their rate, so the telling figure is pyzmq CURVE as a share of pyzmq NULL, libzmq's own price for CURVE (libsodium, C).",
    "",
    "Reproduce: `npm ci && npm run bench:zmtp` (needs Node ≥ 20 for the zeromq.js and Node rows). Options: `--runs 5 --messages 200000 --size 100 --round-trips 20000 --pairs ours-bun,zeromq-node --no-write`; pair ids: " +
      PAIRS.map((p) => `\`${p.id}\``).join(", ") +
      ". Without `--no-write` the script replaces this section of docs/benchmarks.md and leaves the others alone.",
    "",
  );
  return lines.join("\n");
}

async function orchestrate(): Promise<void> {
  if (typeof Bun === "undefined") throw new Error("run the orchestrator under Bun: npm run bench:zmtp");
  const wanted = args.pairs ? args.pairs.split(",").map((id) => id.trim()) : PAIRS.map((p) => p.id);
  const unknown = wanted.filter((id) => !PAIRS.some((p) => p.id === id));
  if (unknown.length > 0) throw new Error(`unknown pair ids: ${unknown.join(", ")}; known: ${PAIRS.map((p) => p.id).join(", ")}`);
  bundleForNode();
  const results: PairResult[] = [];
  for (const pair of PAIRS.filter((p) => wanted.includes(p.id))) {
    try {
      results.push(await runPair(pair));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      process.stdout.write(`  FAILED: ${message}\n`);
      results.push({ pair, processes: 1, pipelined: [], sequentialPerSecond: [], p50Us: [], p99Us: [], warmup: {}, error: message });
    }
  }
  const zeromqPackage = JSON.parse(readFileSync(join(ROOT, "node_modules/zeromq/package.json"), "utf8")) as { version: string };
  const machine = {
    date: commandOutput("date", ["-u", "+%Y-%m-%d %H:%M UTC"]),
    cpu: cpus()[0]?.model.trim() ?? "unknown CPU",
    cores: commandOutput("nproc", []),
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: `Node ${commandOutput(NODE, ["--version"])}`,
    bun: `Bun ${Bun.version}`,
    libzmq: results.find((r) => r.libzmq)?.libzmq ?? "unknown",
    zeromq: zeromqPackage.version,
  };
  const costs = wanted.includes("ours-bun-curve") ? await measureCurveCosts() : undefined;
  const section = renderSection(results, machine, costs);
  process.stdout.write(`\n${section}\n`);
  if (!args["no-write"]) {
    const docPath = resolve(ROOT, args.doc!);
    writeSection(docPath, section);
    process.stdout.write(`updated ${docPath}\n`);
  }
  process.exit(results.some((r) => r.error) ? 1 : 0);
}

const roles: Record<string, () => Promise<void>> = {
  pair: rolePair,
  router: roleRouter,
  dealer: roleDealer,
  "curve-costs": roleCurveCosts,
};
const role = args.role === undefined ? orchestrate : roles[args.role];
if (role === undefined) fail(`unknown --role ${args.role}`);
role().catch((error) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
