/**
 * Runs service classes as dealers: in this process (one instance each), or as N supervised child
 * processes per class. The supervisor restarts a crashed child with backoff, never restarts one
 * that failed to start (that is reported once), and drains every child on shutdown.
 *
 * Recycling (--max-calls-per-instance, --max-memory-per-instance): an instance that passes a
 * limit says so (a "recycle" event); the supervisor starts its replacement with the same devices
 * and tags, and once that one has registered (its setup() done) it sends the old one SIGTERM: it
 * drains (finishes what it runs; what crossed its DRAIN goes to other dealers) and exits. No
 * capacity gap, no call lost; the log says why each instance was replaced.
 */
import { createLogger } from "../util/log.ts";
import { EXIT_STARTUP_FAILURE, startupFailure } from "./errors.ts";
import type { InstancePlan } from "./instance-flags.ts";
import { loadServiceClasses, resolveServiceModule } from "./load-services.ts";
import type { ServiceDealer } from "../index.ts";

export interface DealerRunOptions {
  modulePath: string;
  classNames: string[];
  instances: number;
  /** Devices and tags of each instance (instance k at index k - 1). */
  plan: InstancePlan;
  /** Replace an instance after this many calls. */
  maxCallsPerInstance?: number;
  /** Replace an instance once its RSS passes this many MiB. */
  maxMemoryPerInstance?: number;
  routerAddress: string;
  maxConcurrent?: number;
  apiKey?: string;
  /** Seconds to wait for the router before giving up. */
  startTimeout: number;
  /** CURVE: the router's public key and this dealer's secret key (children get them in their environment, never in argv). */
  curveServerKey?: string;
  curveSecretKey?: string;
}

/** Whether the dealers need supervised child processes: several instances, or recycling (someone must start the replacement). */
export function needsSupervisor(options: DealerRunOptions): boolean {
  return options.instances > 1 || options.maxCallsPerInstance !== undefined || options.maxMemoryPerInstance !== undefined;
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

/** What an instance's devices become in its environment: CUDA_VISIBLE_DEVICES for CUDA, VOIDRAIL_GPU for VoidRail and the user. */
function setGpuEnvironment(env: Record<string, string | undefined>, gpus: readonly string[]): void {
  env.CUDA_VISIBLE_DEVICES = gpus.join(",");
  env.VOIDRAIL_GPU = gpus.join(",");
}

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
  // Instance 1's devices, set before the module loads: a library that reads them at import sees them.
  const gpus = options.plan.gpus?.[0];
  if (gpus !== undefined) setGpuEnvironment(process.env, gpus);
  const classes = await loadServiceClasses(moduleFile(options.modulePath), options.classNames);
  const services: ServiceDealer[] = [];
  const tags = options.plan.tags[0] ?? {};
  for (const [name, cls] of classes) {
    const service = new cls({
      routerAddress: options.routerAddress,
      apiKey: options.apiKey,
      startTimeout: options.startTimeout,
      ...(options.maxConcurrent !== undefined ? { maxConcurrent: options.maxConcurrent } : {}),
      ...(Object.keys(tags).length > 0 ? { tags } : {}),
      ...(options.curveServerKey !== undefined ? { curveServerKey: options.curveServerKey } : {}),
      ...(options.curveSecretKey !== undefined ? { curveSecretKey: options.curveSecretKey } : {}),
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

type ChildProcess = ReturnType<typeof Bun.spawn>;

type ChildState =
  | { kind: "starting"; process: ChildProcess }
  | { kind: "running"; process: ChildProcess; since: number }
  /** Replaced (recycled): drains after SIGTERM and exits; never restarted. */
  | { kind: "retiring"; process: ChildProcess }
  | { kind: "waiting"; timer: ReturnType<typeof setTimeout> }
  | { kind: "stopped" };

/** What an instance says when it passes a limit (ServiceDealer's RecycleReason). */
interface RecycleEvent {
  limit?: string;
  calls?: number;
  rssMiB?: number;
}

interface Child {
  className: string;
  /** Its number among its class's instances, from 1: what decides its GPUs and tags. */
  instance: number;
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
  /** Being replaced: the instance started in its place, until that one has registered. */
  replacement?: Child;
  /** For a replacement: the instance it takes over from, drained once this one is registered. */
  replaces?: Child;
  /** Why it asked to be recycled, in words (for the log lines about it). */
  recycleReason?: string;
  /** A recycle asked for before the instance said "registered"; acted on at registration. */
  pendingRecycle?: RecycleEvent;
  /**
   * For a retiring instance held registered after its drain: the replacement that could not
   * start beside it, started once it says "released" (or has exited).
   */
  heldFor?: Child;
  /** For that replacement: the held instance to let go ("leave") once this one has registered. */
  releases?: Child;
}

/** Writes one command line to an instance's stdin (dealer-child reads "hold" and "leave"). */
function tell(proc: ChildProcess, command: "hold" | "leave"): void {
  const stdin = proc.stdin;
  if (stdin === undefined || typeof stdin === "number") return;
  try {
    stdin.write(`${command}\n`);
    stdin.flush();
  } catch {
    // It has exited: nothing to tell.
  }
}

/** The command line that starts another copy of this program (the binary, or bun + script). */
export function selfCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:\\~BUN");
  return compiled ? [process.execPath] : [process.execPath, Bun.main];
}

/**
 * N child processes per class, supervised. Instance k of a class (from 1) gets the devices and
 * tags `options.plan` gives instance k, and a replacement gets those of the instance it replaces.
 */
export async function runSupervised(options: DealerRunOptions): Promise<RunningDealers> {
  // Load once here so a bad module is reported once, before any child starts; the children get
  // the resolved file, so a dotted --module is resolved (and logged) once too. With --gpus the
  // supervisor sees no GPU itself: a module that touches CUDA at import takes no memory on GPU 0
  // in a process that never serves.
  if (options.plan.gpus !== undefined) process.env.CUDA_VISIBLE_DEVICES = "";
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
    const tags = options.plan.tags[child.instance - 1] ?? {};
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
      ...(Object.keys(tags).length > 0 ? ["--tags", JSON.stringify(tags)] : []),
      ...(options.maxCallsPerInstance !== undefined ? ["--max-calls", String(options.maxCallsPerInstance)] : []),
      ...(options.maxMemoryPerInstance !== undefined ? ["--max-memory", String(options.maxMemoryPerInstance)] : []),
    ];
    const env: Record<string, string | undefined> = {
      ...process.env,
      ...(options.apiKey ? { VOIDRAIL_API_KEY: options.apiKey } : {}),
      ...(options.curveServerKey ? { VOIDRAIL_CURVE_SERVER_KEY: options.curveServerKey } : {}),
      ...(options.curveSecretKey ? { VOIDRAIL_CURVE_SECRET_KEY: options.curveSecretKey } : {}),
    };
    const gpus = options.plan.gpus?.[child.instance - 1];
    if (gpus !== undefined) setGpuEnvironment(env, gpus);
    // stdin is the child's lifeline: nothing is written to it, and its end (this process gone,
    // even by SIGKILL) makes the child drain and exit instead of running on as an orphan.
    const proc = Bun.spawn(args, { stdout: "pipe", stderr: "inherit", stdin: "pipe", env });
    child.state = { kind: "starting", process: proc };
    child.startupFailure = undefined;
    child.dealerId = undefined;
    // Its last event must be read before its exit is judged (a startup failure says why on stdout).
    void Promise.all([proc.exited, watchOutput(child, proc)]).then(([code]) => onExit(child, proc, code));
  };

  const watchOutput = async (child: Child, proc: ChildProcess) => {
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
  const onEvent = (child: Child, proc: ChildProcess, line: string): boolean => {
    if (!line.startsWith('{"event":')) return false;
    let event: { event?: string; dealerId?: string; message?: string } & RecycleEvent;
    try {
      event = JSON.parse(line);
    } catch {
      return false;
    }
    const state = child.state;
    if (state.kind === "retiring" && state.process === proc && event.event === "released") {
      // Drained and torn down, still registered: its replacement can have the device now.
      const next = child.heldFor;
      child.heldFor = undefined;
      if (next !== undefined && !stopping) {
        next.releases = child;
        spawnChild(next);
      } else tell(proc, "leave");
      return true;
    }
    if ((state.kind !== "starting" && state.kind !== "running") || state.process !== proc) return true;
    if (event.event === "recycle") {
      if (state.kind === "starting") child.pendingRecycle = event;
      else recycle(child, proc, event);
      return true;
    }
    if (state.kind !== "starting") return true;
    if (event.event === "registered") {
      child.state = { kind: "running", process: proc, since: Date.now() };
      child.dealerId = event.dealerId;
      if (child.replaces !== undefined) retire(child.replaces, child);
      const held = child.releases;
      child.releases = undefined;
      if (held !== undefined && held.state.kind === "retiring") tell(held.state.process, "leave");
      if (child.pendingRecycle !== undefined) recycle(child, proc, child.pendingRecycle);
      child.pendingRecycle = undefined;
    } else if (event.event === "startup-failed") {
      child.startupFailure = event.message;
    }
    return true;
  };

  /** How messages name an instance: its router id once registered. */
  const describeChild = (child: Child, proc: ChildProcess) =>
    child.dealerId !== undefined ? `${child.dealerId} (pid ${proc.pid})` : `a ${child.className} instance (pid ${proc.pid})`;

  /** Why an instance asked to be recycled, in the flags' words. */
  const describeRecycle = (event: RecycleEvent) =>
    event.limit === "maxMemory"
      ? `its RSS of ${event.rssMiB ?? "?"} MiB passed --max-memory-per-instance ${options.maxMemoryPerInstance}`
      : `it served ${event.calls ?? "?"} calls (--max-calls-per-instance ${options.maxCallsPerInstance})`;

  /** An instance passed a limit: a replacement starts; the old one drains once it is registered. */
  const recycle = (child: Child, proc: ChildProcess, event: RecycleEvent) => {
    if (stopping || child.replacement !== undefined) return;
    const why = describeRecycle(event);
    if (event.limit === "maxMemory" && (event.calls ?? 0) === 0) {
      // Before serving anything it is already too big (a model loaded in setup()): a replacement
      // would be the same, and replacing it would never end.
      logger.warn(`${describeChild(child, proc)}: ${why} before serving any call; it is not replaced (raise the limit)`);
      return;
    }
    child.recycleReason = why;
    logger.info(`replacing ${describeChild(child, proc)}: ${why}; starting its replacement`);
    const replacement: Child = { className: child.className, instance: child.instance, state: { kind: "stopped" }, restarts: 0 };
    replacement.replaces = child;
    child.replacement = replacement;
    children.push(replacement);
    spawnChild(replacement);
  };

  /** The replacement is registered: the old instance drains (SIGTERM) and exits, and is not restarted. */
  const retire = (old: Child, replacement: Child) => {
    replacement.replaces = undefined;
    old.replacement = undefined;
    const state = old.state;
    if (state.kind !== "running" && state.kind !== "starting") return;
    const newProc = replacement.state.kind === "running" ? replacement.state.process : undefined;
    logger.info(
      `${describeChild(old, state.process)} replaced by ${newProc ? describeChild(replacement, newProc) : replacement.dealerId} (${old.recycleReason}); draining it`,
    );
    old.state = { kind: "retiring", process: state.process };
    state.process.kill("SIGTERM");
  };

  const forget = (child: Child) => {
    const index = children.indexOf(child);
    if (index >= 0) children.splice(index, 1);
  };

  const onExit = (child: Child, proc: ChildProcess, code: number) => {
    const state = child.state;
    if (state.kind === "retiring" && state.process === proc) {
      child.state = { kind: "stopped" };
      forget(child);
      logger.info(`${describeChild(child, proc)} drained and exited (code ${code}) after being replaced`);
      // It went without saying "released": its held replacement starts now.
      const next = child.heldFor;
      child.heldFor = undefined;
      if (next !== undefined && !stopping) spawnChild(next);
      return;
    }
    if ((state.kind !== "starting" && state.kind !== "running") || state.process !== proc) return;
    if (stopping) {
      child.state = { kind: "stopped" };
      return;
    }
    if (child.replacement !== undefined) {
      // It went before its replacement was up: the replacement takes its place, no restart.
      logger.warn(`${describeChild(child, proc)} exited (code ${code}) while its replacement starts`);
      child.replacement.replaces = undefined;
      child.state = { kind: "stopped" };
      forget(child);
      return;
    }
    const old = child.replaces;
    if (state.kind === "starting" && old !== undefined && old.state.kind === "running") {
      // Beside the old instance it could not start (its setup() ran out of GPU memory, say): the
      // old one drains and tears down first but stays registered (calls wait, none fails), the
      // replacement starts again on the freed device, and the old one leaves once it is up.
      logger.warn(
        `the replacement of ${describeChild(old, old.state.process)} failed to start (exit code ${code}${child.startupFailure ? `: ${child.startupFailure}` : ""}); draining ${old.dealerId ?? "it"} first, then starting it again`,
      );
      child.replaces = undefined;
      child.state = { kind: "stopped" };
      child.restarts = 1;
      old.replacement = undefined;
      old.heldFor = child;
      const oldProcess = old.state.process;
      old.state = { kind: "retiring", process: oldProcess };
      // One line, no SIGTERM beside it: a signal could overtake the line (see dealer-child.ts).
      tell(oldProcess, "hold");
      return;
    }
    if (state.kind === "starting" && (code === EXIT_STARTUP_FAILURE || child.restarts === 0)) {
      // A child that never came up will not come up by retrying: report once and stop all. The
      // others are stopping too (they fail alike), and what they say is not repeated.
      child.state = { kind: "stopped" };
      stopping = true;
      for (const other of children) {
        const otherState = other.state;
        if (otherState.kind === "starting" || otherState.kind === "running" || otherState.kind === "retiring")
          otherState.process.kill("SIGKILL");
      }
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
    for (let instance = 1; instance <= options.instances; instance++) {
      const child: Child = { className, instance, state: { kind: "stopped" }, restarts: 0 };
      children.push(child);
      spawnChild(child);
    }
  }
  const gpuNote = options.plan.gpus
    ? ` on GPU(s) ${options.plan.gpus.map((group, k) => `${k + 1}:${group.join("+")}`).join(" ")} (instance:devices)`
    : "";
  logger.info(`started ${children.length} instance(s) of ${[...classes.keys()].join(", ")}${gpuNote}`);

  const live = (state: ChildState): state is Extract<ChildState, { process: ChildProcess }> =>
    state.kind === "starting" || state.kind === "running" || state.kind === "retiring";

  return {
    finished,
    drain: async () => {
      stopping = true;
      const exits: Promise<number>[] = [];
      for (const child of children) {
        const state = child.state;
        if (state.kind === "waiting") clearTimeout(state.timer);
        if (live(state)) {
          // A retiring one drains already: a second SIGTERM would force it out mid-call. One held
          // registered for its replacement may go.
          if (state.kind !== "retiring") state.process.kill("SIGTERM");
          else tell(state.process, "leave");
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
        if (live(state)) state.process.kill("SIGKILL");
      }
    },
  };
}
