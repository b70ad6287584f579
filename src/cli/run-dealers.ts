/**
 * Runs service classes as dealers: in this process (one instance each), or as N supervised child
 * processes per class. The supervisor restarts a crashed child with backoff, never restarts one
 * that failed to start (that is reported once), and drains every child on shutdown.
 */
import { createLogger } from "../util/log.ts";
import { EXIT_STARTUP_FAILURE, startupFailure } from "./errors.ts";
import { loadServiceClasses, resolveServiceModule } from "./load-services.ts";
import type { ServiceDealer } from "../index.ts";

export interface DealerRunOptions {
  modulePath: string;
  classNames: string[];
  instances: number;
  routerAddress: string;
  maxConcurrent?: number;
  apiKey?: string;
  /** Seconds to wait for the router before giving up. */
  startTimeout: number;
}

export interface RunningDealers {
  /** Drains every instance (in-flight work finishes), then resolves. */
  drain(): Promise<void>;
  /** Kills every child at once. */
  kill(): void;
  /** Resolves with an exit code when the dealers stop on their own (a startup failure). */
  readonly finished: Promise<number>;
}

const log = () => createLogger("dealer");

/**
 * The module file `--module` names, logged when it came from a dotted module path (the seed's
 * `--module myapp.services`): the user should see which file that turned into.
 */
function moduleFile(modulePath: string): string {
  const resolved = resolveServiceModule(modulePath);
  if (resolved.fromModulePath) log().info(`--module ${modulePath}: loading ${resolved.file}`);
  return resolved.file;
}

/**
 * One process, one instance of each class. With `endWhenDrained` (`voidrail dealer`), `finished`
 * resolves 0 once an operator has drained every service at the router; `serve` keeps running.
 */
export async function runInProcess(options: DealerRunOptions, endWhenDrained = true): Promise<RunningDealers> {
  const classes = await loadServiceClasses(moduleFile(options.modulePath), options.classNames);
  const services: ServiceDealer[] = [];
  for (const [name, cls] of classes) {
    const service = new cls({
      routerAddress: options.routerAddress,
      apiKey: options.apiKey,
      startTimeout: options.startTimeout,
      ...(options.maxConcurrent !== undefined ? { maxConcurrent: options.maxConcurrent } : {}),
    });
    try {
      await service.start();
    } catch (error) {
      await Promise.all(services.map((s) => s.stop()));
      throw startupFailure(name, error);
    }
    services.push(service);
  }
  return {
    drain: async () => {
      await Promise.all(services.map((service) => service.stop()));
    },
    kill: () => process.exit(130),
    // Drained at the router (voidrail client --drain, the dashboard), every service stopped: exit 0.
    finished: endWhenDrained
      ? Promise.all(services.map((service) => service.drainedByRouter)).then(() => {
          console.error("voidrail: drained by the router; dealer shutdown complete");
          return 0;
        })
      : new Promise(() => {}),
  };
}

type ChildState =
  | { kind: "starting"; process: ReturnType<typeof Bun.spawn> }
  | { kind: "running"; process: ReturnType<typeof Bun.spawn>; since: number }
  | { kind: "waiting"; timer: ReturnType<typeof setTimeout> }
  | { kind: "stopped" };

interface Child {
  className: string;
  state: ChildState;
  restarts: number;
  /**
   * The router's id for this instance (from its "registered" event): the name every message uses,
   * as the router's log, `client --clusters` and DEALER_LOST errors do. A supervisor-made slot
   * number would be a second numbering that never matches the router's.
   */
  dealerId?: string;
  /** What the instance said when it could not start (its "startup-failed" event). */
  startupFailure?: string;
}

/** The command line that starts another copy of this program (the binary, or bun + script). */
export function selfCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:\\~BUN");
  return compiled ? [process.execPath] : [process.execPath, Bun.main];
}

/** N child processes per class, supervised. */
export async function runSupervised(options: DealerRunOptions): Promise<RunningDealers> {
  // Load once here so a bad module is reported once, before any child starts; the children get
  // the resolved file, so a dotted --module is resolved (and logged) once too.
  const modulePath = moduleFile(options.modulePath);
  const classes = await loadServiceClasses(modulePath, options.classNames);
  const logger = log();
  const children: Child[] = [];
  let stopping = false;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const spawnChild = (child: Child) => {
    const args = [
      ...selfCommand(),
      "dealer-child",
      "--module",
      modulePath,
      "--class",
      child.className,
      "--address",
      options.routerAddress,
      "--start-timeout",
      String(options.startTimeout),
      "--supervised",
      ...(options.maxConcurrent !== undefined ? ["--max-concurrent", String(options.maxConcurrent)] : []),
    ];
    const env = { ...process.env, ...(options.apiKey ? { VOIDRAIL_API_KEY: options.apiKey } : {}) };
    // stdin is the child's lifeline: nothing is written to it, and its end (this process gone,
    // even by SIGKILL) makes the child drain and exit instead of running on as an orphan.
    const proc = Bun.spawn(args, { stdout: "pipe", stderr: "inherit", stdin: "pipe", env });
    child.state = { kind: "starting", process: proc };
    child.startupFailure = undefined;
    child.dealerId = undefined;
    // Its last event must be read before its exit is judged (a startup failure says why on stdout).
    void Promise.all([proc.exited, watchOutput(child, proc)]).then(([code]) => onExit(child, proc, code));
  };

  const watchOutput = async (child: Child, proc: ReturnType<typeof Bun.spawn>) => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        // The instance's own log lines ("registered as", "reconnected to the router", "stopped")
        // are the user's view of it: passed through as they are, events excepted.
        if (!onEvent(child, proc, line)) process.stdout.write(`${line}\n`);
      }
    }
    if (buffered.length > 0) process.stdout.write(`${buffered}\n`);
  };

  /** Handles one line of an instance's stdout if it is an event; false for anything else. */
  const onEvent = (child: Child, proc: ReturnType<typeof Bun.spawn>, line: string): boolean => {
    if (!line.startsWith('{"event":')) return false;
    let event: { event?: string; dealerId?: string; message?: string };
    try {
      event = JSON.parse(line);
    } catch {
      return false;
    }
    if (child.state.kind !== "starting" || child.state.process !== proc) return true;
    if (event.event === "registered") {
      child.state = { kind: "running", process: proc, since: Date.now() };
      child.dealerId = event.dealerId;
    } else if (event.event === "startup-failed") {
      child.startupFailure = event.message;
    }
    return true;
  };

  /** How messages name an instance: its router id once registered. */
  const describeChild = (child: Child, proc: ReturnType<typeof Bun.spawn>) =>
    child.dealerId !== undefined ? `${child.dealerId} (pid ${proc.pid})` : `a ${child.className} instance (pid ${proc.pid})`;

  const onExit = (child: Child, proc: ReturnType<typeof Bun.spawn>, code: number) => {
    const state = child.state;
    if ((state.kind !== "starting" && state.kind !== "running") || state.process !== proc) return;
    if (stopping) {
      child.state = { kind: "stopped" };
      return;
    }
    if (state.kind === "starting" && (code === EXIT_STARTUP_FAILURE || child.restarts === 0)) {
      // A child that never came up will not come up by retrying: report once and stop all. The
      // others are stopping too (they fail alike), and what they say is not repeated.
      child.state = { kind: "stopped" };
      stopping = true;
      for (const other of children)
        if (other.state.kind === "starting" || other.state.kind === "running") other.state.process.kill("SIGKILL");
      console.error(`voidrail: ${child.startupFailure ?? `${child.className} failed to start (exit code ${code})`}`);
      finish(EXIT_STARTUP_FAILURE);
      return;
    }
    // Backoff doubles per quick crash and resets after a minute of healthy running.
    if (state.kind === "running" && Date.now() - state.since > 60_000) child.restarts = 0;
    const delayMs = Math.min(5000, 100 * 2 ** Math.min(child.restarts, 6));
    child.restarts++;
    const before = state.kind === "starting" ? " before registering" : "";
    logger.warn(`${describeChild(child, proc)} exited (code ${code})${before}; restarting in ${delayMs} ms (restart #${child.restarts})`);
    child.state = { kind: "waiting", timer: setTimeout(() => spawnChild(child), delayMs) };
  };

  for (const className of classes.keys()) {
    for (let i = 1; i <= options.instances; i++) {
      const child: Child = { className, state: { kind: "stopped" }, restarts: 0 };
      children.push(child);
      spawnChild(child);
    }
  }
  logger.info(`started ${children.length} instance(s) of ${[...classes.keys()].join(", ")}`);

  return {
    finished,
    drain: async () => {
      stopping = true;
      const exits: Promise<number>[] = [];
      for (const child of children) {
        const state = child.state;
        if (state.kind === "waiting") clearTimeout(state.timer);
        if (state.kind === "starting" || state.kind === "running") {
          state.process.kill("SIGTERM");
          exits.push(state.process.exited);
        }
      }
      logger.info(`draining ${exits.length} instance(s)`);
      await Promise.all(exits);
    },
    kill: () => {
      stopping = true;
      for (const child of children) {
        const state = child.state;
        if (state.kind === "starting" || state.kind === "running") state.process.kill("SIGKILL");
      }
    },
  };
}
