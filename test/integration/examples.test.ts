import { expect, test } from "bun:test";

/** Runs an example as a user would and returns its output; fails on a non-zero exit. */
async function runExample(...args: string[]): Promise<string> {
  const child = Bun.spawn([process.execPath, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${args.join(" ")} exited ${code}\n${stdout}\n${stderr}`);
  return stdout;
}

test("examples/quickstart.ts (the seed's quick start in TypeScript) runs as given", async () => {
  const output = await runExample("examples/quickstart.ts", "tcp://127.0.0.1:0");
  expect(output).toContain("echo: Hello World");
  expect(output).toContain("asyncEcho: Hello again");
  expect(output).toContain("add: 8");
  expect(output).toContain("stream: 0 1 2 3 4");
  expect(output).toContain("router: mode fifo, 1 active service instance(s)");
  expect(output).toMatch(/methods: .*EchoService\.echo/);
}, 30_000);

test("examples/zmtp-echo.ts (the README's voidrail/zmtp snippet) runs as given", async () => {
  expect(await runExample("examples/zmtp-echo.ts")).toContain("echo: hello world");
}, 30_000);
