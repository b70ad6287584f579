/**
 * Tasks per state, kept by a store as its writes change them, so that `counts()` reads a few
 * numbers instead of counting every task: /metrics and the dashboard's feed ask every second,
 * and counting a million SQLite rows took ~30 ms of the router's one thread each time.
 */
import { TASK_STATES, type TaskState } from "./task-states.ts";

export class StateCounts {
  private counts = StateCounts.zero();

  private static zero(): Record<TaskState, number> {
    return Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as Record<TaskState, number>;
  }

  /** Starts over from a full count (a store opened, or a batch rolled back). */
  reset(rows: Iterable<{ state: string; n: number }>): void {
    this.counts = StateCounts.zero();
    for (const { state, n } of rows) if (state in this.counts) this.counts[state as TaskState] = n;
  }

  added(state: TaskState, n = 1): void {
    this.counts[state] += n;
  }

  removed(state: TaskState, n = 1): void {
    this.counts[state] -= n;
  }

  moved(from: TaskState, to: TaskState): void {
    this.counts[from]--;
    this.counts[to]++;
  }

  /** A copy, every state present. */
  snapshot(): Record<TaskState, number> {
    return { ...this.counts };
  }
}
