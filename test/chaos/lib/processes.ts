/**
 * Child processes for the chaos suite and the soak: a router and dealers in their own processes,
 * so they can be killed (SIGKILL), frozen (SIGSTOP/SIGCONT) and weighed (VmRSS) separately.
 * Each child prints one JSON object per line on stdout (`{"event": …, "at": ms}`); a test waits for
 * the event it needs, with a deadline that fails with a message.
 *
 * @example
 * const router = await RouterProcess.start({ heartbeatTimeout: 1 });
 * const dealer = await DealerChild.start(router.address, "LoadService", { dealer: { maxConcurrent: 16 } });
 * dealer.kill("SIGKILL");
 * await dealer.exitedWithin(5_000);
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ServiceRouterOptions } from "../../../src/index.ts";
import type { ChaosServiceName, DealerChildOptions } from "../fixtures/services.ts";
import { waitFor } from "../../helpers/wait.ts";
import { onLines } from "../../helpers/lines.ts";

export const ROOT = resolve(import.meta.dir, "../../..");
export const BUN = join(ROOT, "node_modules/.bin/bun");

export type ChildEvent = Record<string, unknown> & { event: string; at: number };

/** A Bun child process whose stdout is a stream of JSON events. */
export class JsonChild {
  readonly events: ChildEvent[] = [];
  readonly exited: Promise<number | string | null>;
  private readonly process: ChildProcess;
  private readonly waiters = new Set<() => void>();
  private readonly listeners = new Set<(event: ChildEvent) => void>();
  private stderr = "";

  constructor(
    readonly label: string,
    script: string,
    args: string[],
    /** Keep every event in `events` (tests look back at them); off for chatty children. */
    private readonly keepEvents = true,
  ) {
    this.process = spawn(BUN, [join(ROOT, script), ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    onLines(this.process.stdout!, (line) => {
      if (line.trim() === "") return;
      let event: ChildEvent;
      try {
        event = JSON.parse(line) as ChildEvent;
      } catch {
        this.stderr += `(stdout, not JSON) ${line}\n`;
        return;
      }
      if (this.keepEvents) this.events.push(event);
      for (const listener of this.listeners) listener(event);
      for (const wake of [...this.waiters]) wake();
    });
    this.process.stderr!.setEncoding("utf8");
    this.process.stderr!.on("data", (chunk: string) => {
      // Keep the tail only: a child that logs a lot must not grow this process.
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.exited = new Promise((resolveExit) =>
      this.process.once("exit", (code, signal) => {
        resolveExit(code ?? signal);
        for (const wake of [...this.waiters]) wake();
      }),
    );
  }

  get pid(): number {
    return this.process.pid!;
  }

  get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** What the child wrote on stderr (the last 20 kB). */
  get errors(): string {
    return this.stderr;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive) this.process.kill(signal);
  }

  /** Calls `listener` for every event from now on (for children whose events are not kept). */
  onEvent(listener: (event: ChildEvent) => void): void {
    this.listeners.add(listener);
  }

  /**
   * The first event so far, or yet to come, that matches `predicate`; rejects at the deadline or
   * when the child exits first, with its stderr.
   */
  event(predicate: (event: ChildEvent) => boolean, timeoutMs: number, message: string): Promise<ChildEvent> {
    return new Promise((resolveEvent, reject) => {
      const check = () => {
        const found = this.events.find(predicate);
        if (found) {
          done();
          resolveEvent(found);
        } else if (!this.alive) {
          done();
          reject(
            new Error(
              `${this.label} (pid ${this.pid}) exited (${this.process.exitCode ?? this.process.signalCode}) before ${message}; stderr: ${this.stderr}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `Timed out after ${timeoutMs} ms waiting for: ${message} (${this.label} events: ${JSON.stringify(this.events.slice(-20))}; stderr: ${this.stderr})`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Events whose `event` field is `name`. */
  named(name: string): ChildEvent[] {
    return this.events.filter((event) => event.event === name);
  }

  /** Resolves once the process has exited; fails the caller at the deadline. */
  async exitedWithin(timeoutMs: number): Promise<void> {
    await waitFor(this.exited, { timeoutMs, message: `${this.label} (pid ${this.pid}) to exit` });
  }

  /** Resident memory of the child now, in bytes (0 once it has gone). */
  rss(): number {
    return rssOfPid(this.pid);
  }
}

/** Resident set size of a process from /proc/<pid>/status (VmRSS), in bytes; 0 if it is gone. */
export function rssOfPid(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Options of the router fixture: ServiceRouterOptions without the logger, plus what it prints. */
export type RouterChildOptions = Omit<ServiceRouterOptions, "logger"> & {
  /** Also print debug log lines. Default false. */
  debug?: boolean;
};

/** A ServiceRouter in its own process (test/chaos/fixtures/router-process.ts). */
export class RouterProcess extends JsonChild {
  address = "";

  private constructor(options: RouterChildOptions) {
    super("router", "test/chaos/fixtures/router-process.ts", [JSON.stringify(options)]);
  }

  /** Starts a router and waits until it listens; `address` is then the bound endpoint. */
  static async start(options: RouterChildOptions = {}, timeoutMs = 10_000): Promise<RouterProcess> {
    const router = new RouterProcess({ address: "tcp://127.0.0.1:0", shutdownGrace: 0.2, ...options });
    const ready = await router.event((event) => event.event === "ready", timeoutMs, "the router process to listen");
    router.address = ready.address as string;
    return router;
  }

  /** Log lines of a level so far. */
  logs(level: "error" | "warn" | "info" | "debug"): ChildEvent[] {
    return this.events.filter((event) => event.event === "log" && event.level === level);
  }
}

/** A dealer in its own process (test/chaos/fixtures/dealer-process.ts). */
export class DealerChild extends JsonChild {
  /** The router's id for it, from its latest registration. */
  dealerId: string | undefined;

  private constructor(routerAddress: string, service: ChaosServiceName, options: DealerChildOptions, keepEvents: boolean) {
    super(`dealer ${service}`, "test/chaos/fixtures/dealer-process.ts", [routerAddress, service, JSON.stringify(options)], keepEvents);
    this.onEvent((event) => {
      if (event.event === "registered") this.dealerId = event.dealerId as string;
    });
  }

  /** Spawns the dealer without waiting for it to register. */
  static spawn(routerAddress: string, service: ChaosServiceName, options: DealerChildOptions = {}, keepEvents = true): DealerChild {
    return new DealerChild(routerAddress, service, options, keepEvents);
  }

  /** Spawns the dealer and waits for its first registration. */
  static async start(
    routerAddress: string,
    service: ChaosServiceName,
    options: DealerChildOptions = {},
    timeoutMs = 10_000,
  ): Promise<DealerChild> {
    const child = new DealerChild(routerAddress, service, options, true);
    await child.registered(timeoutMs);
    return child;
  }

  /** Registrations so far (1 after the first). */
  get registrations(): number {
    return this.named("registered").length;
  }

  /** Waits for registration number `number` (1 = the first; the count is in each event). */
  registered(timeoutMs: number, number = 1): Promise<ChildEvent> {
    return this.event(
      (event) => event.event === "registered" && (event.registration as number) >= number,
      timeoutMs,
      number === 1 ? `${this.label} to register` : `${this.label} to register again (registration ${number})`,
    );
  }
}

/** Kills every child still running and waits for them to exit (cleanup). */
export async function killAll(children: Iterable<JsonChild>, timeoutMs = 5_000): Promise<void> {
  const list = [...children];
  // SIGKILL also ends a frozen (SIGSTOP) process.
  for (const child of list) child.kill("SIGKILL");
  await Promise.all(list.map((child) => child.exitedWithin(timeoutMs)));
}
