/**
 * What the task layer needs of the router, and nothing more: start an attempt as a router call
 * owned by the task layer, know a method's dealers and free slots, and hear when slots free up.
 * The router implements it (router/task-host.ts wiring in the public ServiceRouter); tests use
 * a fake.
 */
import type { WireError } from "../protocol/index.ts";
import type { TaskOptions } from "./task-options.ts";

/** One attempt of a task, as the router is asked to run it. */
export interface AttemptRequest {
  taskId: string;
  /** 1 for the first attempt. */
  attempt: number;
  method: string;
  /** The encoded JSON argument array. */
  args: Uint8Array;
  /** The attempt's time limit: the router cancels it and fails it with TIMEOUT. */
  timeoutMs?: number;
  /** Tags the attempt's dealer must have; it waits in the router's queue for one that is free. */
  require?: Readonly<Record<string, string>>;
  /** The task's W3C trace context (from its submit). */
  trace?: { traceparent: string; tracestate?: string };
}

/** Where an attempt's outcome goes. Exactly one of `result` and `error` is called, once. */
export interface AttemptSink {
  result(payload: Uint8Array): void;
  /** `lost`: the dealer went away (or the router stopped) before the attempt ended. */
  error(error: WireError, lost: boolean): void;
  /** The method reported progress (any JSON, decoded). */
  progress(value: unknown): void;
}

export interface AttemptHandle {
  /** Abandons the attempt: the dealer's AbortSignal fires; the sink hears nothing more. */
  cancel(): void;
  /**
   * Cancels, and if the dealer still runs the method after `graceMs`, ends the dealer's process
   * (a supervisor starts a new instance).
   */
  terminate(graceMs: number): void;
}

export interface TaskHost {
  /** Whether some registered dealer offers `method` (with every tag of `require`), and that method's task defaults. */
  method(method: string, require?: Readonly<Record<string, string>>): { stream: boolean; taskDefaults: TaskOptions } | undefined;
  /** Dealer slots free for `method` now (live, not draining dealers). */
  freeSlots(method: string): number;
  /**
   * Takes a token of `method`'s rate limit (shared with the method's plain calls): 0 when taken
   * or the method has no limit, else the ms until the next token (nothing taken).
   */
  takeRateToken(method: string): number;
  /** Runs an attempt now; the caller checked `freeSlots` and took its rate token first. */
  startAttempt(request: AttemptRequest, sink: AttemptSink): AttemptHandle;
  /**
   * From now on calls `listener` whenever slots for `method` may have freed (a call ended, a
   * dealer came); `undefined` stops that. The task layer listens only while it has queued tasks,
   * so plain calls pay nothing for it.
   */
  onCapacity(listener: ((method: string) => void) | undefined): void;
}
