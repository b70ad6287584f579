/**
 * Queued tasks of one method that wait for a key rather than for a dealer: their concurrency key
 * is at its limit, or their rate key is out of tokens. They leave the method's window so tasks of
 * other keys behind them go ahead (no head-of-line blocking across keys), and wait here, in
 * dispatch order per key, until their key is released. Their store state stays `queued`: after a
 * restart the window loads them again and they park again if they must.
 */
import type { TaskRecord } from "../store/task-store.ts";
import { ranksBefore } from "./method-window.ts";

export class ParkedTasks {
  private readonly byKey = new Map<string, TaskRecord[]>();
  /** Keys released since their tasks parked: their heads may start now. */
  private readonly ready = new Set<string>();
  private count = 0;

  /** Tasks parked now. */
  get size(): number {
    return this.count;
  }

  /** Parks `task` behind `key` (in dispatch order); the key counts as blocked until released. */
  park(key: string, task: TaskRecord): void {
    let line = this.byKey.get(key);
    if (!line) this.byKey.set(key, (line = []));
    let low = 0;
    let high = line.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (ranksBefore(line[middle], task)) low = middle + 1;
      else high = middle;
    }
    line.splice(low, 0, task);
    this.ready.delete(key);
    this.count++;
  }

  /** `key` has room again (a task of it ended, or its rate has a token): its head may start. */
  release(key: string): boolean {
    if (!this.byKey.has(key)) return false;
    this.ready.add(key);
    return true;
  }

  /** The first task in dispatch order among the heads of released keys, left in place. */
  peekReady(): { key: string; task: TaskRecord } | undefined {
    let best: { key: string; task: TaskRecord } | undefined;
    for (const key of this.ready) {
      const head = this.byKey.get(key)?.[0];
      if (head === undefined) {
        this.ready.delete(key);
        continue;
      }
      if (!best || ranksBefore(head, best.task)) best = { key, task: head };
    }
    return best;
  }

  /** Removes the head of `key` (the one peekReady gave). */
  takeHead(key: string): TaskRecord | undefined {
    const line = this.byKey.get(key);
    const head = line?.shift();
    if (head === undefined) return undefined;
    this.count--;
    if (line!.length === 0) {
      this.byKey.delete(key);
      this.ready.delete(key);
    }
    return head;
  }

  /** Forgets a parked task that left the queue another way (revoked, expired). */
  remove(id: string): boolean {
    for (const [key, line] of this.byKey) {
      const index = line.findIndex((task) => task.id === id);
      if (index < 0) continue;
      line.splice(index, 1);
      this.count--;
      if (line.length === 0) {
        this.byKey.delete(key);
        this.ready.delete(key);
      }
      return true;
    }
    return false;
  }

  /** Whether any task waits behind `key`. */
  has(key: string): boolean {
    return this.byKey.has(key);
  }
}
