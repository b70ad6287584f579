/**
 * Deadline helpers: wait for the thing you need, and fail with a message that
 * says what never happened.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export interface WaitOptions {
  /** Deadline in milliseconds. */
  timeoutMs: number;
  /** What was being waited for; the rejection reads "Timed out after N ms waiting for: <message>". */
  message: string;
  /** Poll period for predicates (default 10 ms). */
  intervalMs?: number;
}

export class WaitTimeoutError extends Error {
  constructor(message: string, timeoutMs: number, detail?: string) {
    super(`Timed out after ${timeoutMs} ms waiting for: ${message}${detail ? ` (${detail})` : ""}`);
    this.name = "WaitTimeoutError";
  }
}

type Predicate = () => boolean | Promise<boolean>;

/**
 * `waitFor(promise, opts)` resolves with the promise's value, or rejects when the
 * deadline passes first. `waitFor(predicate, opts)` re-checks the predicate
 * (sync or async) until it returns true, or rejects at the deadline. A
 * predicate that throws rejects at once with that error.
 */
export function waitFor<T>(what: PromiseLike<T>, opts: WaitOptions): Promise<T>;
export function waitFor(what: Predicate, opts: WaitOptions): Promise<void>;
export function waitFor<T>(what: PromiseLike<T> | Predicate, opts: WaitOptions): Promise<unknown> {
  const { timeoutMs, message } = opts;
  if (typeof what !== "function") {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new WaitTimeoutError(message, timeoutMs)), timeoutMs);
      Promise.resolve(what).then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
  const predicate = what;
  const interval = opts.intervalMs ?? 10;
  return new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const check = async () => {
      let ok: boolean;
      try {
        ok = await predicate();
      } catch (err) {
        reject(err);
        return;
      }
      if (ok) return resolve();
      if (Date.now() >= deadline) return reject(new WaitTimeoutError(message, timeoutMs));
      setTimeout(check, Math.min(interval, Math.max(1, deadline - Date.now())));
    };
    void check();
  });
}

let ipcCounter = 0;

/**
 * An endpoint that no other test uses: tcp → `tcp://127.0.0.1:0` (the OS picks
 * the port at bind; read it back from lastEndpoint); ipc → a fresh socket path
 * under os.tmpdir().
 */
export function uniqueEndpoint(transport: "tcp" | "ipc"): string {
  if (transport === "tcp") return "tcp://127.0.0.1:0";
  if (transport === "ipc") {
    ipcCounter++;
    const name = `voidrail-${process.pid}-${ipcCounter}-${randomBytes(4).toString("hex")}.sock`;
    return `ipc://${join(tmpdir(), name)}`;
  }
  throw new Error(`uniqueEndpoint: unknown transport ${JSON.stringify(transport)}`);
}

/**
 * What a test adds to a deadline it derived from a component's own settings (a heartbeat
 * timeout, a handshake interval): on a loaded machine (CI, a CPU hog beside the suite) timers
 * fire late and child processes get the CPU late, so "closed within the heartbeat timeout" is
 * checked as "within the heartbeat timeout and this". Raise it for a very slow machine with
 * VOIDRAIL_TEST_SLACK_MS.
 */
export const LOAD_SLACK_MS = Number(process.env.VOIDRAIL_TEST_SLACK_MS ?? 3000);

/** A deadline for something that happens `boundMs` after its cause when timers run on time. */
export function withinLoaded(boundMs: number): number {
  return boundMs + LOAD_SLACK_MS;
}
