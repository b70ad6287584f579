/**
 * Who listens to which task: `watchTask` streams and `waitTask` waiters. A listener hears every
 * state change and progress value of its task after it subscribed; nothing is broadcast to
 * anyone else.
 */
import type { TaskState } from "../store/task-states.ts";

/** One thing that happened to a task, as watchers receive it. */
export interface TaskEvent {
  state: TaskState;
  /** The latest progress value, when the event is a progress report. */
  progress?: unknown;
  /** When it happened (ISO 8601, UTC). */
  at: string;
}

export type TaskListener = (event: TaskEvent) => void;

export class TaskWatchers {
  private readonly byTask = new Map<string, Set<TaskListener>>();

  /** Subscribes; returns the function that unsubscribes. */
  add(taskId: string, listener: TaskListener): () => void {
    let set = this.byTask.get(taskId);
    if (!set) this.byTask.set(taskId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.byTask.get(taskId) === set) this.byTask.delete(taskId);
    };
  }

  /** Whether anyone listens to `taskId` (to skip building an event). */
  has(taskId: string): boolean {
    return this.byTask.has(taskId);
  }

  notify(taskId: string, event: TaskEvent): void {
    const set = this.byTask.get(taskId);
    if (!set) return;
    for (const listener of [...set]) listener(event);
  }

  /** Listeners in all (monitoring). */
  get size(): number {
    let size = 0;
    for (const set of this.byTask.values()) size += set.size;
    return size;
  }
}
