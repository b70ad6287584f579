/**
 * Task states and the one table of allowed transitions. Part of the store contract: every store
 * applies a transition only from a state this table allows, atomically, so two racing updates
 * (a result and a revoke) cannot both win.
 */

/** Where a task stands. Final states: succeeded, failed, revoked, expired. */
export const TaskState = {
  /**
   * A step of a flow waiting for other tasks of its flow: the steps before it (a chain), its own
   * steps (a chain, group or chord itself), or the task a callback belongs to.
   */
  BLOCKED: "blocked",
  /** Waiting for its countdown or eta. */
  SCHEDULED: "scheduled",
  /** Due, waiting for a free dealer. */
  QUEUED: "queued",
  /** An attempt is on a dealer. */
  RUNNING: "running",
  /** An attempt failed and a retry waits out its backoff. */
  RETRYING: "retrying",
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  /** Revoked before it finished. */
  REVOKED: "revoked",
  /** Not started before its `expires` deadline. */
  EXPIRED: "expired",
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

export const TASK_STATES: readonly TaskState[] = Object.values(TaskState);

export const FINAL_STATES: ReadonlySet<TaskState> = new Set([TaskState.SUCCEEDED, TaskState.FAILED, TaskState.REVOKED, TaskState.EXPIRED]);

export function isFinal(state: TaskState): boolean {
  return FINAL_STATES.has(state);
}

/** The named transitions, each with the states it may start from and the state it ends in. */
export const TRANSITIONS = {
  /** A scheduled or retrying task is due. */
  markQueued: { from: [TaskState.SCHEDULED, TaskState.RETRYING], to: TaskState.QUEUED },
  /** An attempt starts on a dealer. */
  markRunning: { from: [TaskState.QUEUED], to: TaskState.RUNNING },
  /** The attempt returned a result. */
  markSucceeded: { from: [TaskState.RUNNING], to: TaskState.SUCCEEDED },
  /** The attempt failed and no retry is left (or its error is not retried); or a flow's chain, group or chord failed. */
  markFailed: { from: [TaskState.RUNNING, TaskState.QUEUED, TaskState.BLOCKED], to: TaskState.FAILED },
  /** The attempt failed (or its dealer was lost) and another one waits for its backoff. */
  markRetrying: { from: [TaskState.RUNNING], to: TaskState.RETRYING },
  /** A revoke: before it starts, or while it runs. */
  markRevoked: {
    from: [TaskState.BLOCKED, TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RETRYING, TaskState.RUNNING],
    to: TaskState.REVOKED,
  },
  /** A blocked flow step's turn came (its arguments are fixed now). */
  markReleased: { from: [TaskState.BLOCKED], to: TaskState.QUEUED },
  /** A blocked flow step's turn came, and its countdown or eta is still to wait. */
  markReleasedLater: { from: [TaskState.BLOCKED], to: TaskState.SCHEDULED },
  /** A chain, group or chord whose steps succeeded: it holds the result they make. */
  markJoined: { from: [TaskState.BLOCKED], to: TaskState.SUCCEEDED },
  /** Its `expires` deadline passed before it started. */
  markExpired: { from: [TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RETRYING], to: TaskState.EXPIRED },
} as const satisfies Record<string, { from: readonly TaskState[]; to: TaskState }>;
export type TransitionName = keyof typeof TRANSITIONS;

/** Whether `name` may move a task that is in `state`. */
export function canTransition(name: TransitionName, state: TaskState): boolean {
  return (TRANSITIONS[name].from as readonly TaskState[]).includes(state);
}
