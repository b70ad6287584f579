/**
 * `npm run demo`: the compiled binary end to end. Starts `voidrail serve` (a router and 4
 * instances of examples/services.ts), calls it with `voidrail client` and from the library,
 * prints what happens, and shuts everything down cleanly.
 */
import { createServer } from "node:net";
import { ClientDealer, silentLogger } from "../src/index.ts";

const BINARY = "dist/voidrail";
const INSTANCES = 4;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function heading(text: string): void {
  const bold = process.stdout.isTTY && !process.env.NO_COLOR;
  console.log(bold ? `\n\x1b[1m== ${text}\x1b[0m` : `\n== ${text}`);
}

/** Runs `voidrail <args>`, echoing the command line and its output. */
async function voidrail(...args: string[]): Promise<void> {
  console.log(`$ voidrail ${args.map((a) => (/[\s"'{[]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  const child = Bun.spawn([BINARY, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  process.stdout.write(stdout);
  if (code !== 0) throw new Error(`voidrail ${args.join(" ")} exited ${code}: ${stderr}`);
}

const port = await freePort();
heading(`starting a router and ${INSTANCES} instances of EchoService (examples/services.ts) on port ${port}`);
const serve = Bun.spawn([BINARY, "serve", "--module", "examples/services.ts", "--instances", String(INSTANCES), "--port", String(port)], {
  stdout: "inherit",
  stderr: "inherit",
  env: { ...process.env, NO_COLOR: "1" },
});

const client = new ClientDealer({ routerAddress: `tcp://127.0.0.1:${port}`, timeout: 60, logger: silentLogger });
try {
  await client.connect();
  const deadline = Date.now() + 30_000;
  while ((await client.discoverClusters()).length < INSTANCES) {
    if (Date.now() > deadline) throw new Error(`the ${INSTANCES} instances did not register within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // polling the router's state, not synchronising
  }
  const p = String(port);
  heading("discovery");
  await voidrail("client", "--port", p, "--list");
  heading("a sync call, an async call, keyword-style and positional arguments");
  await voidrail("client", "--port", p, "--call", "EchoService.echo", "--args", '"Hello World"');
  await voidrail("client", "--port", p, "--call", "EchoService.asyncEcho", "--args", "42");
  await voidrail("client", "--port", p, "--call", "EchoService.add", "--args", "[5, 3]");
  await voidrail("client", "--port", p, "--call", "EchoService.hello", "--args", '{"name":"John"}');
  heading("a stream: one JSON value per line, as the service produces them");
  await voidrail("client", "--port", p, "--call", "EchoService.streamNumbers", "--args", "[0, 5]");

  heading(`CPU-heavy work spread over the ${INSTANCES} instances (8 calls of countPrimes(2000000))`);
  let started = performance.now();
  const one = (await client.invoke("EchoService.countPrimes", 2_000_000)) as { pid: number };
  const singleMs = performance.now() - started;
  started = performance.now();
  const results = (await Promise.all(Array.from({ length: 8 }, () => client.invoke("EchoService.countPrimes", 2_000_000)))) as {
    primes: number;
    pid: number;
  }[];
  const wallMs = performance.now() - started;
  const pids = new Set(results.map((r) => r.pid));
  console.log(`one call: ${singleMs.toFixed(0)} ms (pid ${one.pid})`);
  console.log(
    `8 calls at once: ${wallMs.toFixed(0)} ms wall, on ${pids.size} processes (${[...pids].join(", ")}); one after another they would take about ${(singleMs * 8).toFixed(0)} ms`,
  );
  console.log(`(this machine has ${navigator.hardwareConcurrency} cores: the speed-up is bounded by them, not by the number of instances)`);

  heading("the router's view");
  await voidrail("client", "--port", p, "--queue-status");
  await voidrail("client", "--port", p, "--router-info");
} finally {
  await client.close();
  heading("shutting down (SIGTERM: instances drain, then the router stops)");
  serve.kill("SIGTERM");
  const code = await serve.exited;
  console.log(`voidrail serve exited with code ${code}`);
  if (code !== 0) process.exitCode = 1;
}
