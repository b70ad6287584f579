/**
 * The queued tasks of one method that the router holds in memory: a window at the head of the
 * dispatch order (priority descending, then arrival), refilled from the store as it empties,
 * so a backlog of millions costs the memory of a window, not of the backlog.
 *
 * Invariant: every queued task of the method that ranks at or before `frontier` (the last
 * position read from the store) and has not been taken is in `items`.
 */
import type { QueuePosition, TaskRecord, TaskStore } from "../store/task-store.ts";

/** Whether `a` goes before position `b` in dispatch order. */
export function ranksBefore(a: QueuePosition, b: QueuePosition): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
}

export class MethodWindow {
  private items: TaskRecord[] = [];
  /** Ids in `items`: a task offered after a load already brought it in is not held twice. */
  private readonly ids = new Set<string>();
  private frontier: QueuePosition | undefined;
  /** The store has no queued task of the method past the frontier. */
  private exhausted = false;

  constructor(
    readonly method: string,
    private readonly store: TaskStore,
    private readonly size: number,
  ) {}

  /** Tasks in memory now (for tests and monitoring). */
  get held(): number {
    return this.items.length;
  }

  /** A task of this method became queued (already written to the store). */
  offer(task: TaskRecord): void {
    const inside = this.exhausted || (this.frontier !== undefined && ranksBefore(task, this.frontier));
    if (!inside || this.ids.has(task.id)) return;
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (ranksBefore(this.items[middle], task)) low = middle + 1;
      else high = middle;
    }
    this.items.splice(low, 0, task);
    this.ids.add(task.id);
    if (this.items.length > 2 * this.size) {
      // Too much in memory: forget the tail; the store gives it back when its turn comes.
      for (const dropped of this.items.splice(this.size)) this.ids.delete(dropped.id);
      const last = this.items[this.size - 1];
      this.frontier = { priority: last.priority, seq: last.seq };
      this.exhausted = false;
    }
  }

  /** Forgets a task that left the queue another way (revoked, expired). */
  remove(id: string): void {
    if (!this.ids.delete(id)) return;
    const index = this.items.findIndex((task) => task.id === id);
    if (index >= 0) this.items.splice(index, 1);
  }

  /** The next task to run, left in place; undefined when none is queued. */
  peek(): TaskRecord | undefined {
    this.refill();
    return this.items[0];
  }

  /** The next task to run, or undefined when none is queued. */
  take(): TaskRecord | undefined {
    this.refill();
    const next = this.items.shift();
    if (next) this.ids.delete(next.id);
    return next;
  }

  /** With nothing in memory, loads the next part of the queue from the store. */
  private refill(): void {
    if (this.items.length === 0 && !this.exhausted) {
      const loaded = this.store.queued(this.method, this.size, this.frontier);
      this.items = loaded;
      this.ids.clear();
      for (const task of loaded) this.ids.add(task.id);
      if (loaded.length > 0) {
        const last = loaded[loaded.length - 1];
        this.frontier = { priority: last.priority, seq: last.seq };
      }
      this.exhausted = loaded.length < this.size;
    }
  }
}
