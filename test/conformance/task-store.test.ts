/**
 * The task store contract on both stores, then what only a file can show: commits survive a
 * reopen and a SIGKILL, and a file that is not a usable store is refused with one clear error.
 *
 *   ./node_modules/.bin/bun test test/conformance/task-store.test.ts
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StoreFailure, TaskStoreError } from "../../src/store/errors.ts";
import { MemoryTaskStore } from "../../src/store/memory-store.ts";
import { MIGRATIONS } from "../../src/store/sqlite/migrations.ts";
import { APPLICATION_ID, LATEST_VERSION, migrate } from "../../src/store/sqlite/migrate.ts";
import { SqliteTaskStore } from "../../src/store/sqlite/store.ts";
import { BUN, ROOT } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";
import { newTask, taskStoreCases } from "./task-store.cases.ts";

const dir = mkdtempSync(join(tmpdir(), "voidrail-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `store-${++files}.db`);

taskStoreCases("memory", () => new MemoryTaskStore());
taskStoreCases("sqlite", () => new SqliteTaskStore(freshPath()));

function refusal(open: () => unknown): TaskStoreError {
  try {
    open();
  } catch (error) {
    expect(error).toBeInstanceOf(TaskStoreError);
    return error as TaskStoreError;
  }
  throw new Error("expected the store to be refused");
}

describe("sqlite store file", () => {
  test("what a write resolved is there after the store is closed and opened again", async () => {
    const path = freshPath();
    const first = new SqliteTaskStore(path);
    const { task } = await first.insert(newTask({ idempotencyKey: "keep" }));
    await first.transition(task.id, "markRunning", { countAttempt: true });
    await first.setProgress(task.id, { current: 7 });
    await first.close();
    const second = new SqliteTaskStore(path);
    expect(second.get(task.id)).toMatchObject({ state: "running", attempts: 1, progress: { current: 7 }, idempotencyKey: "keep" });
    await second.close();
  });

  test("every insert a killed process saw resolve is in the file (SIGKILL right after)", async () => {
    const path = freshPath();
    const script = `
      import { SqliteTaskStore } from ${JSON.stringify(join(ROOT, "src/store/sqlite/store.ts"))};
      const store = new SqliteTaskStore(${JSON.stringify(path)});
      const policy = { retries: 0, retryDelayMs: 0, backoff: "fixed", retryDelayMaxMs: 0, retryOn: [], lostRetries: 0, resultTtlMs: 1 };
      for (let batch = 0; ; batch++) {
        const inserts = [];
        for (let i = 0; i < 50; i++) {
          const id = "t-" + batch + "-" + i;
          inserts.push(store.insert({ id, method: "S.m", args: new Uint8Array([91, 93]), state: "queued", priority: 5, createdAt: 1, runAt: 1, policy }));
        }
        await Promise.all(inserts);
        console.log("committed " + (batch + 1) * 50);
      }`;
    const scriptPath = join(dir, `writer-${files}.ts`);
    writeFileSync(scriptPath, script);
    const child = Bun.spawn([BUN, scriptPath], { stdout: "pipe", stderr: "inherit" });
    let committed = 0;
    const lines = (async () => {
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of child.stdout) {
        buffered += decoder.decode(chunk);
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        for (const line of parts) committed = Number(line.split(" ")[1]);
      }
    })();
    await waitFor(() => committed >= 1000, { timeoutMs: 20_000, message: "the writer to commit 1000 tasks" });
    child.kill("SIGKILL");
    await child.exited;
    await lines;
    const store = new SqliteTaskStore(path);
    expect(store.counts().queued).toBeGreaterThanOrEqual(committed);
    await store.close();
  });

  test("a new file is migrated to the latest schema and marked as a VoidRail store", async () => {
    const path = freshPath();
    await new SqliteTaskStore(path).close();
    const db = new Database(path);
    expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: LATEST_VERSION });
    expect(db.query("PRAGMA application_id").get()).toEqual({ application_id: APPLICATION_ID });
    db.close();
    // Opening again applies nothing and keeps the version.
    await new SqliteTaskStore(path).close();
  });

  test("migrations apply in order, each once", () => {
    const db = new Database(":memory:");
    const steps = [...MIGRATIONS, { version: LATEST_VERSION + 1, name: "extra", sql: "CREATE TABLE extra (x INTEGER)" }];
    expect(migrate(db, "memory", MIGRATIONS)).toBe(LATEST_VERSION);
    expect(migrate(db, "memory", steps)).toBe(LATEST_VERSION + 1);
    expect(migrate(db, "memory", steps)).toBe(LATEST_VERSION + 1);
    expect(db.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'extra'").get()).toEqual({ n: 1 });
    db.close();
  });

  test("a store of schema 1 with tasks in it is migrated to schedules: its tasks stay, with no schedule", async () => {
    const path = freshPath();
    const db = new Database(path);
    migrate(db, path, MIGRATIONS.slice(0, 1));
    db.query(
      `INSERT INTO tasks (id, method, args, state, priority, created_at, run_at, policy) VALUES ('old-1', 'S.m', X'5B5D', 'queued', 5, 1, 1, '{}')`,
    ).run();
    db.close();
    const store = new SqliteTaskStore(path);
    expect(store.get("old-1")).toMatchObject({ id: "old-1", state: "queued" });
    expect(store.get("old-1")?.schedule).toBeUndefined();
    expect(store.listSchedules()).toEqual([]);
    await store.close();
    const check = new Database(path);
    expect(check.query("PRAGMA user_version").get()).toEqual({ user_version: LATEST_VERSION });
    check.close();
  });

  test("a store file with tasks in it (of schema 3, written by an older VoidRail): counts start from its tasks, then follow writes", async () => {
    const path = freshPath();
    const db = new Database(path);
    migrate(db, path, MIGRATIONS.slice(0, 3));
    const insert = db.query(
      "INSERT INTO tasks (id, method, args, state, priority, created_at, run_at, policy) VALUES (?, 'S.m', X'5B5D', ?, 5, 1, 1, '{}')",
    );
    for (const [i, state] of ["queued", "queued", "succeeded", "failed", "failed", "failed"].entries()) insert.run(`old-${i}`, state);
    db.close();
    const store = new SqliteTaskStore(path);
    expect(store.counts()).toMatchObject({ queued: 2, succeeded: 1, failed: 3, running: 0 });
    expect(await store.transition("old-0", "markRunning")).toBe(true);
    expect(store.counts()).toMatchObject({ queued: 1, running: 1 });
    await store.close();
  });

  test("a file that is not SQLite is refused as CORRUPT", () => {
    const path = freshPath();
    writeFileSync(path, "this is not a database, just some bytes that are long enough to look like a header ".repeat(20));
    const error = refusal(() => new SqliteTaskStore(path));
    expect(error.reason).toBe(StoreFailure.CORRUPT);
    expect(error.message).toContain(path);
  });

  test("a SQLite database of another application is refused as FOREIGN and left untouched", () => {
    const path = freshPath();
    const db = new Database(path);
    db.exec("CREATE TABLE invoices (n INTEGER)");
    db.close();
    expect(refusal(() => new SqliteTaskStore(path)).reason).toBe(StoreFailure.FOREIGN);
    const check = new Database(path);
    expect(check.query("SELECT name FROM sqlite_master").all()).toEqual([{ name: "invoices" }]);
    check.close();
  });

  test("a store from a newer VoidRail is refused as TOO_NEW", async () => {
    const path = freshPath();
    await new SqliteTaskStore(path).close();
    const db = new Database(path);
    db.exec(`PRAGMA user_version = ${LATEST_VERSION + 5}`);
    db.close();
    const error = refusal(() => new SqliteTaskStore(path));
    expect(error.reason).toBe(StoreFailure.TOO_NEW);
    expect(error.message).toContain("newer VoidRail");
  });

  test("a second store on a file that is open is refused as LOCKED", async () => {
    const path = freshPath();
    const first = new SqliteTaskStore(path);
    await first.insert(newTask());
    const error = refusal(() => new SqliteTaskStore(path));
    expect(error.reason).toBe(StoreFailure.LOCKED);
    await first.close();
  });

  test("a path in a folder that does not exist is refused as UNWRITABLE", () => {
    expect(refusal(() => new SqliteTaskStore(join(dir, "missing", "deeper", "tasks.db"))).reason).toBe(StoreFailure.UNWRITABLE);
  });
});
