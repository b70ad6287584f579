/**
 * `voidrail task ...` and the router's task store through the compiled binary: the default store
 * file named at start-up, submit/status/wait/watch/revoke/list with their output and exit codes,
 * tasks surviving a router SIGKILL and restart on the same file, and an unusable store refused
 * with one line and exit 78.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../helpers/wait.ts";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BINARY,
  buildBinary,
  type CliProcess,
  cleanEnv,
  expectOneLineError,
  freePort,
  killAll,
  REPO_ROOT,
  runCli,
  runCliOk,
  spawnCli,
} from "../helpers/voidrail-cli.ts";

const SERVICES = join(REPO_ROOT, "examples/services.ts");
const dir = mkdtempSync(join(tmpdir(), "voidrail-task-cli-"));

beforeAll(() => buildBinary(), 120_000);
afterEach(() => killAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A router in `cwd` using its default store (no --store, no VOIDRAIL_STORE). */
async function startRouter(cwd: string, port: number): Promise<CliProcess> {
  const router = spawnCli(["router", "--port", String(port)], { cwd, unsetEnv: ["VOIDRAIL_STORE"] });
  await router.waitForOutput(/task store: \.\/voidrail-tasks\.db/, { timeoutMs: 20_000 });
  return router;
}

async function startDealer(port: number): Promise<CliProcess> {
  const dealer = spawnCli(["dealer", "--module", SERVICES, "--port", String(port)]);
  await dealer.waitForOutput(/registered as EchoService-\d+/, { timeoutMs: 20_000 });
  return dealer;
}

describe("voidrail task", () => {
  test("submit prints an id; wait prints the result; status, list and watch print JSON when piped", async () => {
    const cwd = mkdtempSync(join(dir, "run-"));
    const port = await freePort();
    await startRouter(cwd, port);
    expect(existsSync(join(cwd, "voidrail-tasks.db"))).toBe(true);
    await startDealer(port);
    const p = ["--port", String(port)];

    const id = (await runCliOk(["task", "submit", "EchoService.add", "--args", "[2, 3]", ...p])).trim();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(JSON.parse(await runCliOk(["task", "wait", id, ...p]))).toBe(5);
    expect(JSON.parse(await runCliOk(["task", "status", id, ...p]))).toMatchObject({ id, state: "succeeded", result: 5, attempts: 1 });
    expect(JSON.parse(await runCliOk(["task", "list", "--state", "succeeded", ...p])).tasks.map((t: { id: string }) => t.id)).toEqual([id]);

    const stepped = (await runCliOk(["task", "submit", "EchoService.countPrimesInSteps", "--args", "20000", ...p])).trim();
    const watched = (await runCliOk(["task", "watch", stepped, ...p], { timeoutMs: 30_000 }))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(watched.at(-1).state).toBe("succeeded");
    const status = JSON.parse(await runCliOk(["task", "status", stepped, ...p]));
    expect(status.progress).toEqual({ current: 10, total: 10 });
    expect(status.result).toMatchObject({ n: 20000, primes: 2262, taskId: stepped, attempt: 1 });

    const later = (await runCliOk(["task", "submit", "EchoService.add", "--args", "[1, 1]", "--countdown", "600", ...p])).trim();
    expect(JSON.parse(await runCliOk(["task", "status", later, ...p])).state).toBe("scheduled");
    expect(JSON.parse(await runCliOk(["task", "revoke", later, ...p])).state).toBe("revoked");
    const revoked = await runCli(["task", "wait", later, ...p]);
    expect(revoked.code).toBe(1);
    expectOneLineError(revoked, /^voidrail: CANCELLED: the task was revoked$/);
  }, 120_000);

  test("usage and unknown ids: exit 2 for a bad command line, exit 1 with one line for an unknown task", async () => {
    const cwd = mkdtempSync(join(dir, "run-"));
    const port = await freePort();
    await startRouter(cwd, port);
    const p = ["--port", String(port)];
    const noMethod = await runCli(["task", "submit", ...p]);
    expect(noMethod.code).toBe(2);
    expectOneLineError(noMethod, /^voidrail: give the method/);
    const badPriority = await runCli(["task", "submit", "EchoService.add", "--priority", "high", ...p]);
    expect(badPriority.code).toBe(2);
    const unknown = await runCli(["task", "status", "0190a5f0-0000-7000-8000-000000000000", ...p]);
    expect(unknown.code).toBe(1);
    expectOneLineError(unknown, /^voidrail: TASK_NOT_FOUND: no task has the id 0190a5f0-0000-7000-8000-000000000000$/);
    const notAnId = await runCli(["task", "status", "42", ...p]);
    expect(notAnId.code).toBe(1);
    expectOneLineError(notAnId, /^voidrail: VALIDATION_ERROR: not a task id/);
    const unoffered = await runCli(["task", "submit", "Nobody.here", ...p]);
    expectOneLineError(unoffered, /^voidrail: NO_SUCH_METHOD: no service offers Nobody\.here$/);
  }, 60_000);

  test("a router killed with SIGKILL and started again on its file keeps finished results and runs what waited", async () => {
    const cwd = mkdtempSync(join(dir, "run-"));
    const port = await freePort();
    const p = ["--port", String(port)];
    const first = await startRouter(cwd, port);
    const dealer = await startDealer(port);
    const done = (await runCliOk(["task", "submit", "EchoService.add", "--args", "[20, 22]", ...p])).trim();
    expect(JSON.parse(await runCliOk(["task", "wait", done, ...p]))).toBe(42);
    dealer.signal("SIGTERM");
    await dealer.exited(20_000);
    const waiting: string[] = [];
    for (let i = 0; i < 5; i++) {
      waiting.push((await runCliOk(["task", "submit", "EchoService.add", "--args", `[${i}, 100]`, "--wait-for-dealer", ...p])).trim());
    }
    first.signal("SIGKILL");
    await first.exited(10_000);

    await startRouter(cwd, port);
    expect(JSON.parse(await runCliOk(["task", "status", done, ...p]))).toMatchObject({ state: "succeeded", result: 42 });
    await startDealer(port);
    for (const [i, id] of waiting.entries()) expect(JSON.parse(await runCliOk(["task", "wait", id, ...p]))).toBe(i + 100);
    for (const id of waiting) expect(JSON.parse(await runCliOk(["task", "status", id, ...p])).attempts).toBe(1);
  }, 120_000);

  test("a store file that is not a database: the router refuses to start, one line, exit 78", async () => {
    const cwd = mkdtempSync(join(dir, "run-"));
    writeFileSync(join(cwd, "broken.db"), "not a database at all, just text that is long enough to be read as a header. ".repeat(20));
    const result = await runCli(["router", "--port", String(await freePort()), "--store", "broken.db"], { cwd });
    expect(result.code).toBe(78);
    expectOneLineError(result, /^voidrail: cannot start the router: broken\.db is not a usable task store: /);
  }, 60_000);
});

// util-linux `script` gives the command a terminal for stdout.
describe.skipIf(!Bun.which("script"))("voidrail task on a terminal", () => {
  test("watch draws one live line (state and progress), status and list print tables", async () => {
    const cwd = mkdtempSync(join(dir, "run-"));
    const port = await freePort();
    const p = ["--port", String(port)];
    await startRouter(cwd, port);
    await startDealer(port);
    const id = (await runCliOk(["task", "submit", "EchoService.countPrimesInSteps", "--args", "200000", ...p])).trim();
    const onTerminal = async (args: string[]) => {
      const quoted = [BINARY, ...args].map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(" ");
      const child = Bun.spawn(["script", "-qec", quoted, "/dev/null"], {
        env: cleanEnv(),
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
      expect(code).toBe(0);
      return stdout;
    };
    const watched = await onTerminal(["task", "watch", id, ...p]);
    // One line redrawn in place: carriage returns and erase-line codes, no JSON.
    expect(watched).toContain("\r\u001b[2K");
    expect(watched).toMatch(new RegExp(`${id} succeeded( 10/10 \\(100%\\))?\\s*$`));
    expect(watched).not.toContain("{");
    expect(await onTerminal(["task", "status", id, ...p])).toMatch(/^state\s+succeeded\s*$/m);
    expect(await onTerminal(["task", "list", ...p])).toMatch(
      new RegExp(`^${id}\\s+EchoService\\.countPrimesInSteps\\s+succeeded\\s+1\\s+5`, "m"),
    );
  }, 60_000);
});

describe("voidrail task revoke --terminate", () => {
  test("a method that never yields under `voidrail dealer --instances 2`: its instance is ended and replaced, the task ends revoked", async () => {
    const cwd = mkdtempSync(join(dir, "run-"));
    const port = await freePort();
    const p = ["--port", String(port)];
    await startRouter(cwd, port);
    const dealer = spawnCli(["dealer", "--module", join(REPO_ROOT, "test/fixtures/spin-services.ts"), "--instances", "2", ...p]);
    await dealer.waitForOutput(/registered as SpinService-\d+/, { timeoutMs: 30_000, count: 2 });
    const id = (await runCliOk(["task", "submit", "SpinService.spin", ...p])).trim();
    await waitFor(async () => JSON.parse(await runCliOk(["task", "status", id, ...p])).state === "running", {
      timeoutMs: 20_000,
      message: "the spin task to be running",
    });
    expect(JSON.parse(await runCliOk(["task", "revoke", id, "--terminate", ...p])).state).toBe("revoked");
    // The supervisor says the instance died by a signal and starts another: three registrations in all.
    await dealer.waitForOutput(/registered as SpinService-\d+/, { timeoutMs: 30_000, count: 3 });
    expect(dealer.output).toMatch(/SpinService-\d+ \(pid \d+\) (exited|was killed)/);
    expect(JSON.parse(await runCliOk(["task", "status", id, ...p]))).toMatchObject({ state: "revoked", error: { code: "CANCELLED" } });
    const clusters = JSON.parse(await runCliOk(["client", "--clusters", ...p]));
    expect(clusters).toHaveLength(2);
  }, 120_000);
});
