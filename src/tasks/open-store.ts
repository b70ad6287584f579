/**
 * Picks and opens the task store a router was given: "memory", a file path (SQLite), or a
 * TaskStore of the caller's. The SQLite store is loaded only when asked for, so the library
 * imports under Node, where `bun:sqlite` does not exist.
 */
import { StoreFailure, TaskStoreError } from "../store/errors.ts";
import { MemoryTaskStore } from "../store/memory-store.ts";
import type { TaskStore } from "../store/task-store.ts";

/** Where a router keeps its tasks. */
export type TaskStoreOption = "memory" | string | TaskStore;

export async function openTaskStore(option: TaskStoreOption): Promise<{ store: TaskStore; description: string }> {
  if (typeof option !== "string") return { store: option, description: "a custom store" };
  if (option === "memory") return { store: new MemoryTaskStore(), description: "memory (tasks do not survive a restart)" };
  if (typeof Bun === "undefined") {
    throw new TaskStoreError(
      `the SQLite task store (${option}) needs Bun (bun:sqlite); under Node use taskStore: "memory" or run the router with Bun or the voidrail binary`,
      StoreFailure.UNWRITABLE,
    );
  }
  const { SqliteTaskStore } = await import("../store/sqlite/store.ts");
  return { store: new SqliteTaskStore(option), description: option };
}
