/**
 * TimerSpy: records the timers (setTimeout, setInterval) made while it is installed, with their
 * delays, and whether each was cleared or has fired, so a test can check what a component left
 * armed (and for how long) without waiting for the timer to fire. The timers themselves are the
 * real ones. Everything that sets a timer while it is installed is recorded (waitFor too), so a
 * test that waits meanwhile picks the component's own timers by kind or by the file that set them
 * (`from`).
 */

export interface SpiedTimer {
  kind: "timeout" | "interval";
  /** The delay asked for, in ms. */
  delayMs: number;
  handle: unknown;
  cleared: boolean;
  /** A timeout whose callback ran (an interval's runs are not counted). */
  fired: boolean;
  /** The stack where it was set (`from` matches on it). */
  stack: string;
}

export class TimerSpy {
  readonly timers: SpiedTimer[] = [];
  readonly #restore: () => void;

  private constructor() {
    const original = {
      setTimeout: globalThis.setTimeout,
      setInterval: globalThis.setInterval,
      clearTimeout: globalThis.clearTimeout,
      clearInterval: globalThis.clearInterval,
    };
    const make = (kind: SpiedTimer["kind"]) =>
      ((callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => {
        const stack = new Error().stack ?? "";
        const timer: SpiedTimer = { kind, delayMs: delay ?? 0, handle: undefined, cleared: false, fired: false, stack };
        const run = (...runArgs: unknown[]) => {
          if (kind === "timeout") timer.fired = true;
          callback(...runArgs);
        };
        timer.handle = kind === "timeout" ? original.setTimeout(run, delay, ...args) : original.setInterval(run, delay, ...args);
        this.timers.push(timer);
        return timer.handle;
      }) as unknown;
    // clearTimeout and clearInterval take either kind of handle, as the real ones do.
    const clear = (name: "clearTimeout" | "clearInterval") =>
      ((handle: unknown) => {
        for (const timer of this.timers) if (timer.handle === handle && handle !== undefined) timer.cleared = true;
        original[name](handle as ReturnType<typeof setTimeout>);
      }) as unknown;
    globalThis.setTimeout = make("timeout") as typeof setTimeout;
    globalThis.setInterval = make("interval") as typeof setInterval;
    globalThis.clearTimeout = clear("clearTimeout") as typeof clearTimeout;
    globalThis.clearInterval = clear("clearInterval") as typeof clearInterval;
    this.#restore = () => Object.assign(globalThis, original);
  }

  /** Starts recording; call restore() when done (in a finally or afterEach). */
  static install(): TimerSpy {
    return new TimerSpy();
  }

  /** Puts the real timer functions back. A timeout recorded still notes when it fires; clears made after this are not seen. */
  restore(): void {
    this.#restore();
  }

  /** Timers set by code in a file whose path contains `file` ("src/tasks/task-clock.ts"). */
  from(file: string): SpiedTimer[] {
    return this.timers.filter((timer) => timer.stack.includes(file));
  }

  /** Timers still armed (not cleared, and a timeout not fired yet), of one kind and/or set from one file, or all. */
  live(which: { kind?: SpiedTimer["kind"]; from?: string } = {}): SpiedTimer[] {
    const { kind, from } = which;
    return this.timers.filter(
      (timer) =>
        (kind === undefined || timer.kind === kind) &&
        (from === undefined || timer.stack.includes(from)) &&
        !timer.cleared &&
        !(timer.kind === "timeout" && timer.fired),
    );
  }
}
