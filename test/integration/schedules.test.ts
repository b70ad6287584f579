/**
 * Schedules through real sockets: client.schedules against a router with the memory store and
 * with a SQLite file, a real dealer running what they fire. Fired tasks show their schedule and
 * due time; list, pause, resume and remove; bad definitions refused with the reason, nothing stored.
 *
 *   ./node_modules/.bin/bun test test/integration/schedules.test.ts
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScheduleNotFoundError, ServiceDealer, serviceMethod, type TaskInfo, ValidationError } from "../../src/index.ts";
import { type ClientMessage, decodeMessage, encodeMessage, PROTOCOL_VERSION } from "../../src/protocol/index.ts";
import { Dealer } from "../../src/zmtp/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

const STEP_MS = 15_000;
const dir = mkdtempSync(join(tmpdir(), "voidrail-schedules-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

class Report extends ServiceDealer {
  @serviceMethod
  generate(kind: string) {
    return `report ${kind}`;
  }

  @serviceMethod
  async *lines() {
    yield 1;
  }
}

for (const store of ["memory", "sqlite"] as const) {
  describe(`schedules with the ${store} store`, () => {
    const cluster = new Cluster("tcp");
    afterEach(() => cluster.dispose());

    async function setup() {
      await cluster.router({ taskStore: store === "memory" ? "memory" : join(dir, `schedules-${++files}.db`) });
      await cluster.dealer((options) => new Report(options));
      return cluster.client();
    }

    async function firedBy(client: Awaited<ReturnType<typeof setup>>, name: string): Promise<TaskInfo[]> {
      return (await client.listTasks({ limit: 1000 })).tasks.filter((t) => t.schedule?.name === name);
    }

    test("an interval schedule fires tasks that run; getTask shows the schedule and the due time", async () => {
      const client = await setup();
      const info = await client.schedules.set({
        name: "every-second",
        every: 1,
        method: "Report.generate",
        args: ["hourly"],
        options: { priority: 8 },
      });
      expect(info).toMatchObject({
        name: "every-second",
        every: 1,
        method: "Report.generate",
        args: ["hourly"],
        catchUp: "last",
        paused: false,
      });
      expect(info.options).toEqual({ priority: 8 });
      expect(Date.parse(info.nextDueAt!)).toBeGreaterThan(Date.parse(info.createdAt));
      await waitFor(async () => (await firedBy(client, "every-second")).length >= 2, { timeoutMs: STEP_MS, message: "two firings" });
      const [task] = await firedBy(client, "every-second");
      expect(await client.waitTask(task.id, { timeout: STEP_MS / 1000 })).toBe("report hourly");
      const done = await client.getTask(task.id);
      expect(done).toMatchObject({ state: "succeeded", priority: 8, schedule: { name: "every-second" } });
      expect(done.idempotencyKey).toBe(`schedule:every-second:${done.schedule!.dueAt}`);
      expect(Date.parse(done.schedule!.dueAt) - Date.parse(info.createdAt)).toBeGreaterThan(0);
    });

    test("list, pause, resume and remove", async () => {
      const client = await setup();
      await client.schedules.set({
        name: "daily-report",
        cron: "0 3 * * *",
        timezone: "Europe/Berlin",
        method: "Report.generate",
        args: ["daily"],
      });
      await client.schedules.set({ name: "a-first", every: 3600, method: "Report.generate", catchUp: "none" });
      const listed = await client.schedules.list();
      expect(listed.map((s) => s.name)).toEqual(["a-first", "daily-report"]);
      const daily = listed[1];
      expect(daily).toMatchObject({ cron: "0 3 * * *", timezone: "Europe/Berlin", args: ["daily"] });
      // 03:00 in Berlin is 01:00 or 02:00 UTC.
      expect(["01", "02"]).toContain(daily.nextDueAt!.slice(11, 13));
      const paused = await client.schedules.pause("daily-report");
      expect(paused.paused).toBe(true);
      expect(paused.nextDueAt).toBeUndefined();
      const resumed = await client.schedules.resume("daily-report");
      expect(resumed.paused).toBe(false);
      expect(resumed.nextDueAt).toBe(daily.nextDueAt);
      expect(await client.schedules.remove("daily-report")).toBe(true);
      expect(await client.schedules.remove("daily-report")).toBe(false);
      expect((await client.schedules.list()).map((s) => s.name)).toEqual(["a-first"]);
      await expect(client.schedules.pause("daily-report")).rejects.toBeInstanceOf(ScheduleNotFoundError);
      await expect(client.schedules.resume("nope")).rejects.toBeInstanceOf(ScheduleNotFoundError);
    });

    test("a paused schedule fires nothing", async () => {
      const client = await setup();
      await client.schedules.set({ name: "quiet", every: 1, method: "Report.generate", paused: true });
      // A second schedule proves time passed and the scheduler ran.
      await client.schedules.set({ name: "loud", every: 1, method: "Report.generate" });
      await waitFor(async () => (await firedBy(client, "loud")).length >= 2, {
        timeoutMs: STEP_MS,
        message: "the other schedule to fire twice",
      });
      expect(await firedBy(client, "quiet")).toHaveLength(0);
    });

    test("bad definitions are refused with the reason and nothing is stored", async () => {
      const client = await setup();
      const bad: [Record<string, unknown>, RegExp][] = [
        [{ name: "x", cron: "61 * * * *", method: "Report.generate" }, /bad cron expression.*minute/i],
        [{ name: "x", cron: "0 3 * * *", timezone: "Europe/Atlantis", method: "Report.generate" }, /unknown time zone "Europe\/Atlantis"/],
        [{ name: "x", cron: "0 0 31 2 *", method: "Report.generate" }, /never fires/],
        [{ name: "x", cron: "0 3 * * *", every: 60, method: "Report.generate" }, /cron or every/],
        [{ name: "x", method: "Report.generate" }, /cron or every/],
        [{ name: "x", every: 0.5, method: "Report.generate" }, /every/],
        [{ name: "x", every: 60, timezone: "UTC", method: "Report.generate" }, /timezone/],
        [{ name: "bad name!", every: 60, method: "Report.generate" }, /name/],
        [{ name: "x", every: 60, method: "Report.generate", catchUp: "some" }, /catchUp/],
        [{ name: "x", every: 60, method: "Report.generate", options: { eta: new Date() } }, /eta/],
        [{ name: "x", every: 60, method: "Report.generate", options: { priority: 12 } }, /priority/],
        [{ name: "x", every: 60, method: "Report.generate", options: { rateKey: "k" } }, /rateKeyLimit/],
        [{ name: "x", every: 60, method: "Report.lines" }, /streaming/],
        [{ name: "x", every: 60, method: "Report.generate", color: "blue" }, /color/],
      ];
      for (const [definition, reason] of bad) {
        const error = await client.schedules.set(definition as never).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as Error).message).toMatch(reason);
      }
      expect(await client.schedules.list()).toEqual([]);
      expect((await client.listTasks()).tasks).toHaveLength(0);
    });
  });
}

describe("schedule ops from a raw client", () => {
  const cluster = new Cluster("tcp");
  afterEach(() => cluster.dispose());

  test("a bad schedule.set header is answered with its id; a bad cron with the reason; nothing stored", async () => {
    const router = await cluster.router();
    const socket = new Dealer({ logger: null });
    socket.connect(router.address);
    const received: ClientMessage[] = [];
    void (async () => {
      for await (const frames of socket) {
        const message = decodeMessage(frames, "client");
        if (message.ok) received.push(message);
      }
    })();
    try {
      await socket.send(encodeMessage("HELLO", { role: "client", version: PROTOCOL_VERSION }));
      await waitFor(() => received.some((m) => m.kind === "WELCOME"), { timeoutMs: STEP_MS, message: "WELCOME" });
      const errorFor = async (id: number) => {
        await waitFor(() => received.some((m) => m.kind === "ERROR" && m.header.id === id), { timeoutMs: STEP_MS, message: `ERROR ${id}` });
        return received.find((m) => m.kind === "ERROR" && m.header.id === id)!.header as { code: string; message: string };
      };
      await socket.send(
        encodeMessage("TASK", { id: 1, op: "schedule.set", schedule: { name: "x", cron: "*".repeat(300), method: "A.b" } }),
      );
      expect((await errorFor(1)).code).toBe("PROTOCOL_ERROR");
      await socket.send(encodeMessage("TASK", { id: 2, op: "schedule.set", schedule: { name: "x", cron: "0 0 * * 9", method: "A.b" } }));
      const bad = await errorFor(2);
      expect(bad.code).toBe("VALIDATION_ERROR");
      expect(bad.message).toMatch(/bad cron expression/);
      await socket.send(encodeMessage("TASK", { id: 3, op: "schedule.list" }));
      await waitFor(() => received.some((m) => m.kind === "RESULT" && m.header.id === 3), { timeoutMs: STEP_MS, message: "the list" });
      const list = received.find((m) => m.kind === "RESULT" && m.header.id === 3)!;
      expect(JSON.parse(new TextDecoder().decode(list.payload as Uint8Array))).toEqual({ schedules: [] });
    } finally {
      socket.close();
    }
  });
});
