/**
 * `voidrail schedule ...` and `--rate-limit` through the compiled binary: croner runs inside it
 * (a cron rule in a time zone gets its local due time), an interval schedule fires tasks that
 * show their schedule, list/pause/resume/remove print JSON when piped, and bad input is one line
 * with a non-zero exit code.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../helpers/wait.ts";
import { buildBinary, expectOneLineError, freePort, killAll, runCli, runCliOk, spawnCli } from "../helpers/voidrail-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "voidrail-schedule-cli-"));

beforeAll(() => buildBinary(), 120_000);
afterEach(() => killAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("voidrail schedule", () => {
  test("add, list, pause, resume, remove; an interval fires tasks that show their schedule", async () => {
    const port = await freePort();
    const router = spawnCli(["router", "--port", String(port), "--store", join(dir, "tasks.db")]);
    await router.waitForOutput(/router listening/, { timeoutMs: 20_000 });
    const p = ["--port", String(port)];

    const daily = JSON.parse(
      await runCliOk([
        "schedule",
        "add",
        "daily-report",
        "--cron",
        "0 3 * * *",
        "--timezone",
        "Europe/Berlin",
        "--method",
        "Report.generate",
        "--args",
        '"daily"',
        ...p,
      ]),
    );
    expect(daily).toMatchObject({ name: "daily-report", cron: "0 3 * * *", timezone: "Europe/Berlin", args: ["daily"], catchUp: "last" });
    // 03:00 in Berlin is 02:00 UTC in winter, 01:00 in summer.
    expect(["01:00:00", "02:00:00"]).toContain(daily.nextDueAt.slice(11, 19));

    await runCliOk([
      "schedule",
      "add",
      "beat",
      "--every",
      "1",
      "--method",
      "Nobody.ping",
      "--options",
      '{"priority": 8}',
      "--catch-up",
      "none",
      ...p,
    ]);
    await waitFor(
      async () =>
        JSON.parse(await runCliOk(["task", "list", ...p])).tasks.some((t: { schedule?: { name: string } }) => t.schedule?.name === "beat"),
      { timeoutMs: 15_000, message: "the interval to fire a task" },
    );
    const fired = JSON.parse(await runCliOk(["task", "list", ...p])).tasks[0];
    expect(fired).toMatchObject({ method: "Nobody.ping", priority: 8, schedule: { name: "beat" } });

    const listed = JSON.parse(await runCliOk(["schedule", "list", ...p]));
    expect(listed.map((s: { name: string }) => s.name)).toEqual(["beat", "daily-report"]);
    expect(JSON.parse(await runCliOk(["schedule", "pause", "beat", ...p]))).toMatchObject({ name: "beat", paused: true });
    expect(JSON.parse(await runCliOk(["schedule", "resume", "beat", ...p]))).toMatchObject({ name: "beat", paused: false });
    expect(JSON.parse(await runCliOk(["schedule", "remove", "beat", ...p]))).toEqual({ name: "beat", removed: true });
    const again = await runCli(["schedule", "remove", "beat", ...p]);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout)).toEqual({ name: "beat", removed: false });

    expectOneLineError(
      await runCli(["schedule", "add", "x", "--cron", "0 25 * * *", "--method", "R.g", ...p]),
      /bad cron expression.*hour/i,
    );
    expectOneLineError(
      await runCli(["schedule", "add", "x", "--cron", "0 3 * * *", "--timezone", "Moon/Base", "--method", "R.g", ...p]),
      /unknown time zone "Moon\/Base"/,
    );
    expectOneLineError(await runCli(["schedule", "add", "x", "--method", "R.g", ...p]), /--cron or --every/);
    expectOneLineError(await runCli(["schedule", "pause", "nope", ...p]), /SCHEDULE_NOT_FOUND: no schedule is named nope/);
    expect(JSON.parse(await runCliOk(["schedule", "list", ...p])).map((s: { name: string }) => s.name)).toEqual(["daily-report"]);
  });

  test("--rate-limit takes Service.method=N/s|m|h, repeatable; a bad one is a usage error", async () => {
    const bad = await runCli(["router", "--rate-limit", "Mail.send=100/d", "--port", String(await freePort())]);
    expect(bad.code).toBe(2);
    expectOneLineError(bad, /--rate-limit Mail\.send: "100\/d" is not a rate/);
    const noRate = await runCli(["serve", "--rate-limit", "Mail.send", "--port", String(await freePort())]);
    expect(noRate.code).toBe(2);
    expectOneLineError(noRate, /--rate-limit takes Service\.method=N\/s/);
    const port = await freePort();
    const router = spawnCli(["router", "--port", String(port), "--store", "memory", "--rate-limit", "A.b=10/s", "--rate-limit", "C.d=5/m"]);
    await router.waitForOutput(/router listening/, { timeoutMs: 20_000 });
  });
});
