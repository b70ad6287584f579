/**
 * Runs the compiled `voidrail` binary for the e2e tests: builds it once per test run, spawns it
 * with NO_COLOR=1 and no VOIDRAIL_* variables from the caller's environment, and waits for
 * output lines and exits with deadlines that fail with what the process printed.
 */
import { renameSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { uniqueEndpoint, WaitTimeoutError } from "./wait.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
/** Where the e2e tests' binary lives: under .tmp, so it never replaces the user's dist/voidrail. */
export const BINARY = join(REPO_ROOT, ".tmp/e2e/voidrail");

let built: Promise<string> | undefined;

/**
 * Builds the binary with the project's own build script, once per test process (every e2e file
 * calls this in beforeAll). It is built beside its final name and renamed into place, so a run
 * started meanwhile elsewhere keeps executing the file it started.
 */
export function buildBinary(): Promise<string> {
  built ??= (async () => {
    mkdirSync(join(REPO_ROOT, ".tmp/e2e"), { recursive: true });
    const staging = `${BINARY}.${process.pid}.building`;
    const bun = join(REPO_ROOT, "node_modules/.bin/bun");
    const build = Bun.spawn([bun, "scripts/build.ts", "--outfile", staging], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(build.stdout).text(), new Response(build.stderr).text(), build.exited]);
    if (code !== 0) throw new Error(`scripts/build.ts exited ${code}\n${stdout}\n${stderr}`);
    renameSync(staging, BINARY);
    return BINARY;
  })();
  return built;
}

/** A TCP port that was free a moment ago: bound on port 0, read back, closed. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** An ipc:// address no other test uses. */
export function uniqueIpcAddress(): string {
  return uniqueEndpoint("ipc");
}

/**
 * The environment every spawned binary gets: the caller's, less VOIDRAIL_*, plus NO_COLOR=1 and
 * VOIDRAIL_STORE=memory: routers started side by side from one folder would otherwise share the
 * default ./voidrail-tasks.db (the second is refused: the store is one router's). Tests of the
 * file store pass their own VOIDRAIL_STORE or --store.
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith("VOIDRAIL_")) env[name] = value;
  }
  return { ...env, NO_COLOR: "1", VOIDRAIL_STORE: "memory", ...extra };
}

export interface SpawnOptions {
  /** Added to the clean environment. */
  env?: Record<string, string>;
  /** Working directory; default the repository root, where the README's examples run. */
  cwd?: string;
  /** Use another executable than the binary (e.g. a copy of it). */
  executable?: string;
  /** Variables to remove from the environment, NO_COLOR included (to see what a user's shell gets). */
  unsetEnv?: string[];
}

const running = new Set<CliProcess>();

/** A running `voidrail` process whose output the test can wait on. */
export class CliProcess {
  readonly process: ReturnType<typeof Bun.spawn>;
  stdout = "";
  stderr = "";
  exitCode: number | null = null;
  private readonly changed = new Set<() => void>();
  private readonly done: Promise<number>;

  constructor(
    readonly args: string[],
    options: SpawnOptions = {},
  ) {
    // Its own process group, so cleanup (and a simulated Ctrl-C) reaches the instances it forks.
    const env = cleanEnv(options.env);
    for (const name of options.unsetEnv ?? []) delete env[name];
    this.process = Bun.spawn([options.executable ?? BINARY, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true,
    });
    running.add(this);
    const pumps = [
      this.pump(this.process.stdout as ReadableStream<Uint8Array>, "stdout"),
      this.pump(this.process.stderr as ReadableStream<Uint8Array>, "stderr"),
    ];
    this.done = Promise.all([this.process.exited, ...pumps]).then(([code]) => {
      this.exitCode = code;
      running.delete(this);
      this.notify();
      return code;
    });
  }

  get pid(): number {
    return this.process.pid;
  }

  /** stdout and stderr, each in its own order (the two are not interleaved). */
  get output(): string {
    return `${this.stdout}${this.stderr}`;
  }

  /** What the process printed, for failure messages. */
  describe(): string {
    return `voidrail ${this.args.join(" ")}\n--- stdout ---\n${this.stdout}--- stderr ---\n${this.stderr}`;
  }

  private async pump(stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr"): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      this[into] += decoder.decode(chunk, { stream: true });
      this.notify();
    }
  }

  private notify(): void {
    for (const listener of [...this.changed]) listener();
  }

  /** Resolves when `check()` holds, re-checked on every chunk of output and at exit. */
  private until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolveWait, reject) => {
      const listener = () => {
        if (check()) {
          finish();
          resolveWait();
        } else if (this.exitCode !== null) {
          finish();
          reject(new Error(`voidrail exited ${this.exitCode} before ${what}\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new WaitTimeoutError(`${what}\n${this.describe()}`, timeoutMs));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.changed.delete(listener);
      };
      this.changed.add(listener);
      listener();
    });
  }

  /** Waits until stdout + stderr contain `pattern` at least `count` times. */
  waitForOutput(pattern: RegExp | string, { timeoutMs = 10_000, count = 1 } = {}): Promise<void> {
    const regex =
      typeof pattern === "string"
        ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g")
        : new RegExp(pattern.source, `${pattern.flags.replace("g", "")}g`);
    const matches = () => (this.output.match(regex) ?? []).length;
    return this.until(() => matches() >= count, `output matching ${regex} ×${count} (seen ${matches()})`, timeoutMs);
  }

  /** The exit code, or a failure naming the command and its output when it has not exited in time. */
  async exited(timeoutMs = 10_000): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WaitTimeoutError(`voidrail to exit\n${this.describe()}`, timeoutMs)), timeoutMs);
    });
    try {
      return await Promise.race([this.done, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to this process only (not the instances it started). */
  signal(signal: NodeJS.Signals): void {
    this.process.kill(signal);
  }

  /** Sends a signal to its whole process group, as a terminal's Ctrl-C does. */
  signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Starts the binary and returns at once; wait on the result's output or exit. */
export function spawnCli(args: string[], options?: SpawnOptions): CliProcess {
  return new CliProcess(args, options);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the binary to completion (deadline `timeoutMs`) and returns its exit code and output. */
export async function runCli(args: string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  const code = await child.exited(options.timeoutMs ?? 10_000);
  return { code, stdout: child.stdout, stderr: child.stderr };
}

/** Like runCli, but fails with the output unless the exit code is 0. */
export async function runCliOk(args: string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<string> {
  const result = await runCli(args, options);
  if (result.code !== 0)
    throw new Error(`voidrail ${args.join(" ")} exited ${result.code}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`);
  return result.stdout;
}

/** Kills every process group a test left running (afterEach/afterAll); waits for them to go. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const child of left) child.signalGroup("SIGKILL");
  await Promise.all(left.map((child) => child.exited(5000).catch(() => undefined)));
}

/**
 * Asserts a failure is reported as one `voidrail: ...` line and a non-zero exit: no stack trace,
 * no usage dump. Log lines (`[router] ...`, `[EchoService] ...`) may come with it.
 */
export function expectOneLineError(result: CliResult, pattern: RegExp): string {
  const lines = result.stderr.split("\n").filter((line) => line.trim().length > 0 && !/^\[[\w-]+\] /.test(line));
  const problems: string[] = [];
  if (result.code === 0) problems.push("exit code 0");
  if (lines.length !== 1) problems.push(`${lines.length} lines on stderr`);
  if (!/^voidrail: /.test(lines[0] ?? "")) problems.push('stderr does not start with "voidrail: "');
  if (!pattern.test(lines[0] ?? "")) problems.push(`stderr does not match ${pattern}`);
  if (/\n\s+at /.test(result.stderr)) problems.push("a stack trace");
  if (problems.length > 0) throw new Error(`${problems.join(", ")}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`);
  return lines[0];
}
