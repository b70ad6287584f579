/**
 * The Celery demo's rate_limit and beat_schedule, as the examples under examples/celery-demo/
 * write them in VoidRail, run as a user would run them.
 *
 *   ./node_modules/.bin/bun test test/integration/celery-demo-limits.test.ts
 */
import { expect, test } from "bun:test";

async function runExample(path: string): Promise<string> {
  const child = Bun.spawn([process.execPath, path, "tcp://127.0.0.1:0"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 40_000);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${path} exited ${code}\n${stdout}\n${stderr}`);
  return stdout;
}

test("rate_limit '10/m' (examples/celery-demo/rate-limit-limited-task.ts): one bucket for both workers", async () => {
  const output = await runExample("examples/celery-demo/rate-limit-limited-task.ts");
  expect(output).toContain("processed a on worker-");
  expect(output).toContain("processed b on worker-");
  const gap = Number(/the second started ([\d.]+) s after the first/.exec(output)?.[1]);
  // 10 a minute, one at a time: the second token comes six seconds after the first.
  expect(gap).toBeGreaterThanOrEqual(5.5);
}, 45_000);

test("beat_schedule (examples/celery-demo/schedule-beat.ts): schedules in the router, fired once per due time", async () => {
  const output = await runExample("examples/celery-demo/schedule-beat.ts");
  expect(output).toContain("daily-report: every 86400 s -> Tasks.generate_report");
  expect(output).toContain("every-minute: every 60 s -> Tasks.check_system");
  expect(output).toMatch(/nightly: 0 3 \* \* \* -> Tasks\.generate_report, next \d{4}-\d\d-\d\dT0[12]:00:00\.000Z/);
  expect(output).toMatch(/demo-tick fired for \d{4}-.*Z: ok/);
}, 45_000);
