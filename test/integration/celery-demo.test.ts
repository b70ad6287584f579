/**
 * The Celery demo's examples in VoidRail form (examples/celery-demo/, mapped in the README's
 * "Workflows and schedules"), each run as a user would and checked for what it prints.
 *
 *   ./node_modules/.bin/bun test test/integration/celery-demo.test.ts
 */
import { expect, test } from "bun:test";

/** Runs an example and returns its output; fails on a non-zero exit. */
async function runExample(path: string): Promise<string> {
  const child = Bun.spawn([process.execPath, path], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${path} exited ${code}\n${stdout}\n${stderr}`);
  return stdout;
}

test("canvas.ts: group, chain, chord, the nested canvas and a settled group", async () => {
  const output = await runExample("examples/celery-demo/canvas.ts");
  expect(output).toContain("group: [4,8,16]");
  expect(output).toContain('chain: saved "processed(hello)"');
  expect(output).toContain('chord: saved ["processed(data1)","processed(data2)","processed(data3)"]');
  expect(output).toContain("canvas: notified: valid(processed(batch_0)) + valid(processed(batch_1)) + valid(processed(batch_2))");
  expect(output).toContain("canvas tree: chain of group:succeeded, task:succeeded, task:succeeded");
  expect(output).toContain(
    'settled: [{"ok":true,"value":2},{"ok":false,"error":{"code":"REMOTE_ERROR","name":"RangeError","message":"the input was out of range"}}]',
  );
}, 40_000);

test("callbacks.ts: link, link_error and a task class's on_success / on_failure, each once", async () => {
  const output = await runExample("examples/celery-demo/callbacks.ts");
  expect(output).toContain("add: 4");
  expect(output).toContain("failingTask: RemoteError: the input was out of range");
  const callbacks = output.split("\n").filter((line) => line.startsWith("on_"));
  expect(callbacks).toEqual([
    "on_success(link): 4",
    "on_failure(link_error): RangeError: the input was out of range",
    'on_success(CallbackTask): "important task done"',
    "on_failure(CallbackTask): RangeError: the input was out of range",
  ]);
}, 40_000);

test("options.ts: priority, expires, autoretry with backoff, task_routes, inspect active / registered, control revoke", async () => {
  const output = await runExample("examples/celery-demo/options.ts");
  expect(output).toContain("priority: 9 -> 4");
  expect(output).toContain("expires: set");
  expect(output).toContain('autoretry: {"url":"https://example.com","status":200} after 3 attempts');
  expect(output).toContain("task_routes: slow worker PID did 7");
  expect(output).toContain("dedicated workers: 1");
  expect(output).toContain("inspect registered: DemoTasks.add, SlowQueue.slowTask");
  expect(output).toContain("inspect active: DemoTasks.slowTask");
  expect(output).toContain("control revoke: revoked");
}, 40_000);
