/**
 * A/B of the router's own cost between two checkouts, in one run: the router and a dealer of each
 * checkout serve the same client (this process), in alternating rounds, and the figure is the
 * router process's CPU time per call (all its threads, from the schedstat of each of its tasks in /proc), with
 * calls/s beside it. CPU time per call barely moves when other processes share the machine, where
 * calls/s swings by a factor of two; alternating rounds cancel slow drifts.
 *
 *   bun bench/router-ab.ts <dir A> <dir B> [--rounds 6] [--calls 50000]
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ClientDealer, silentLogger } from "../src/index.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: "string", default: "6" }, calls: { type: "string", default: "50000" } },
});
if (positionals.length !== 2) throw new Error("usage: bun bench/router-ab.ts <dir A> <dir B> [--rounds N] [--calls N]");
const ROUNDS = Number(values.rounds);
const CALLS = Number(values.calls);
const IN_FLIGHT = 64;

/** Nanoseconds on CPU of every thread of `pid`. */
function cpuNs(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return total;
}

async function spawnPeer(dir: string, args: string[]): Promise<{ child: ReturnType<typeof Bun.spawn>; address: string }> {
  const child = Bun.spawn([process.execPath, "bench/rpc-peer.ts", ...args], { cwd: dir, stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 15_000;
  while (!text.includes("\n")) {
    if (Date.now() > deadline) throw new Error(`${dir}: peer ${args.join(" ")} did not start`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`${dir}: peer ${args.join(" ")} exited before it was ready`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { child, address: text.trim().split(" ")[1] };
}

async function pipelined(client: ClientDealer, calls: number): Promise<number> {
  let started = 0;
  const start = performance.now();
  const worker = async () => {
    while (started < calls) {
      started++;
      await client.invoke("BenchService.echo", "hello");
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return calls / ((performance.now() - start) / 1000);
}

async function measure(dir: string): Promise<{ cpuUsPerCall: number; callsPerSecond: number }> {
  const router = await spawnPeer(dir, ["router", "load_balance"]);
  const dealer = await spawnPeer(dir, ["dealer", router.address, "thread"]);
  const client = new ClientDealer({ routerAddress: router.address, timeout: 60, logger: silentLogger });
  try {
    await client.connect();
    await pipelined(client, 5000);
    const before = cpuNs(router.child.pid);
    const callsPerSecond = await pipelined(client, CALLS);
    const cpuUsPerCall = (cpuNs(router.child.pid) - before) / 1000 / CALLS;
    return { cpuUsPerCall, callsPerSecond };
  } finally {
    await client.close();
    router.child.kill();
    dealer.child.kill();
    await Promise.all([router.child.exited, dealer.child.exited]);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Record<string, { cpu: number[]; rate: number[] }> = {};
for (const dir of positionals) results[dir] = { cpu: [], rate: [] };
for (let round = 1; round <= ROUNDS; round++) {
  // Alternate which side goes first, so neither always runs on a warmer or colder machine.
  const order = round % 2 === 1 ? positionals : [...positionals].reverse();
  for (const dir of order) {
    const { cpuUsPerCall, callsPerSecond } = await measure(dir);
    results[dir].cpu.push(cpuUsPerCall);
    results[dir].rate.push(callsPerSecond);
    console.log(`round ${round} ${dir}: router ${cpuUsPerCall.toFixed(2)} µs CPU/call, ${Math.round(callsPerSecond)} calls/s`);
  }
}
const [a, b] = positionals;
for (const dir of positionals) {
  console.log(`median ${dir}: router ${median(results[dir].cpu).toFixed(2)} µs CPU/call, ${Math.round(median(results[dir].rate))} calls/s`);
}
console.log(
  `B/A: router CPU per call ${(median(results[b].cpu) / median(results[a].cpu)).toFixed(3)}, calls/s ${(median(results[b].rate) / median(results[a].rate)).toFixed(3)}`,
);
