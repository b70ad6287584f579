/**
 * Controller for test/fixtures/libzmq-peer.cjs: a Node child process that runs
 * real libzmq sockets (npm `zeromq`) as the reference peer for conformance tests.
 *
 * Works whether the test process is Bun or Node: the peer is always spawned
 * with `node` (override with $VOIDRAIL_NODE), through node:child_process.
 * Set VOIDRAIL_PEER_LOG=1 to copy the peer's stderr to ours.
 *
 *   const peer = await LibzmqPeer.start();
 *   await peer.create("d", "dealer", { routingId: "d1" });
 *   await peer.connect("d", endpoint);
 *   await peer.send("d", ["hello", { fill: 0xab, size: 1 << 20 }]);
 *   const frames = await peer.receive("d", 2000);  // Buffer, or {size, sha256} above 4 KiB
 *   await peer.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, parse } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { decodeFromPeer, encodeForPeer, type FrameInput, type ReceivedFrame } from "./frames.ts";

export type PeerSocketType = "dealer" | "router";

/** Options handed to the zeromq.js Dealer/Router constructor (zeromq.js names). */
export interface PeerSocketOptions {
  routingId?: string;
  heartbeatInterval?: number;
  heartbeatTimeout?: number;
  heartbeatTimeToLive?: number;
  reconnectInterval?: number;
  reconnectMaxInterval?: number;
  sendHighWaterMark?: number;
  receiveHighWaterMark?: number;
  linger?: number;
  mandatory?: boolean;
  handover?: boolean;
  maxMessageSize?: number;
  handshakeInterval?: number;
  immediate?: boolean;
  [option: string]: unknown;
}

export interface PeerEvent {
  /** zeromq.js event type: "connect", "accept", "handshake", "disconnect", "close", "connect:retry", ... */
  type: string;
  address?: string;
  error?: string;
  at: number;
}

export interface PeerStats {
  echoed: number;
  received: number;
  sent: number;
  echoError: string | null;
}

export interface PeerStartOptions {
  /** Deadline for the peer to start and report ready (default 10 s). */
  startTimeoutMs?: number;
  /** Default deadline for commands (default 10 s). */
  callTimeoutMs?: number;
  /** Label used in error messages (default "libzmq peer"). */
  name?: string;
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  what: string;
}

const FIXTURE_REL = join("test", "fixtures", "libzmq-peer.cjs");

/**
 * Finds the fixture by walking up from this module's directory. This works from
 * test/helpers/ and from a bundle written elsewhere in the repository (e.g.
 * .tmp/conformance-node.mjs), where import.meta.url points at the bundle.
 */
function fixturePath(): string {
  const override = process.env.VOIDRAIL_LIBZMQ_PEER;
  if (override) return override;
  const tried: string[] = [];
  const starts = [dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    let dir = start;
    for (;;) {
      const candidate = join(dir, FIXTURE_REL);
      tried.push(candidate);
      if (existsSync(candidate)) return candidate;
      const parent = dirname(dir);
      if (parent === dir || dir === parse(dir).root) break;
      dir = parent;
    }
  }
  throw new Error(`LibzmqPeer: cannot find ${FIXTURE_REL}; tried:\n  ${tried.join("\n  ")}`);
}

export class LibzmqPeer {
  private static readonly live = new Set<LibzmqPeer>();

  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly abandoned = new Set<number>();
  private stderrTail = "";
  private exitInfo: string | null = null;
  private readonly exitedPromise: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly name: string,
    private readonly callTimeoutMs: number,
  ) {
    this.exitedPromise = new Promise<void>((resolve) => {
      child.once("close", (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        LibzmqPeer.live.delete(this);
        this.failAll(`${this.name} ${this.exitInfo}`);
        resolve();
      });
    });
    child.once("error", (err) => {
      this.exitInfo = `failed: ${err.message}`;
      this.failAll(`${this.name} ${this.exitInfo}`);
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
      if (process.env.VOIDRAIL_PEER_LOG) process.stderr.write(chunk);
    });
  }

  /** Spawns `node test/fixtures/libzmq-peer.cjs` and waits until it reports ready. */
  static async start(opts: PeerStartOptions = {}): Promise<LibzmqPeer> {
    const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
    const nodeBin = process.env.VOIDRAIL_NODE || "node";
    const script = fixturePath();
    const child = spawn(nodeBin, [script], { stdio: ["pipe", "pipe", "pipe"], cwd: dirname(script) });
    const peer = new LibzmqPeer(child, opts.name ?? "libzmq peer", opts.callTimeoutMs ?? 10_000);
    LibzmqPeer.live.add(peer);

    const ready = new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity });
      let isReady = false;
      lines.on("line", (line) => {
        if (!isReady) {
          let msg: { ready?: boolean; runtime?: string; error?: string } | undefined;
          try {
            msg = JSON.parse(line);
          } catch {
            /* not the ready line */
          }
          if (msg?.ready === true) {
            isReady = true;
            resolve();
          } else if (msg?.ready === false) {
            reject(new Error(`${peer.name} could not start: ${msg.error}`));
          } else {
            reject(new Error(`${peer.name} printed before ready: ${line.slice(0, 200)}`));
          }
          return;
        }
        peer.onLine(line);
      });
      peer.exitedPromise.then(() => {
        if (!isReady) reject(new Error(`${peer.name} ${peer.exitInfo} before it was ready${peer.stderrHint()}`));
      });
      child.once("error", (err) => {
        if (!isReady) reject(new Error(`${peer.name}: cannot spawn '${nodeBin}': ${err.message}`));
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${peer.name} did not report ready within ${startTimeoutMs} ms${peer.stderrHint()}`)),
        startTimeoutMs,
      );
    });
    try {
      await Promise.race([ready, deadline]);
    } catch (err) {
      peer.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return peer;
  }

  /** Stops every peer this process started and has not stopped yet. */
  static async stopAll(): Promise<void> {
    await Promise.all(Array.from(LibzmqPeer.live, (p) => p.stop()));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  // ---- commands -----------------------------------------------------------

  /** Creates a zeromq.js Dealer/Router named `sock` (linger defaults to 0). Returns its routingId option. */
  async create(sock: string, type: PeerSocketType, options: PeerSocketOptions = {}): Promise<string | null> {
    const r = await this.call("create", { sock, type, options });
    return (r.routingId as string | null) ?? null;
  }

  /** Binds and returns the socket's lastEndpoint (the real port for tcp://…:0). `retryMs` retries EADDRINUSE. */
  async bind(sock: string, endpoint: string, opts: { retryMs?: number; timeoutMs?: number } = {}): Promise<string> {
    const retryMs = opts.retryMs ?? 0;
    const r = await this.call("bind", { sock, endpoint, retryMs }, opts.timeoutMs ?? this.callTimeoutMs + retryMs);
    return r.endpoint as string;
  }

  async unbind(sock: string, endpoint: string): Promise<void> {
    await this.call("unbind", { sock, endpoint });
  }

  async connect(sock: string, endpoint: string): Promise<void> {
    await this.call("connect", { sock, endpoint });
  }

  /**
   * Sends one multipart message. Frames: bytes, strings (UTF-8), or `{fill, size}` /
   * `{pattern, size}` specs that the peer generates itself. Resolves when zeromq.js
   * has queued it.
   */
  async send(sock: string, frames: readonly FrameInput[], opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.call("send", { sock, frames: frames.map(encodeForPeer) }, opts.timeoutMs);
  }

  /** Receives one message; frames over 4 KiB come back as `{size, sha256}`. Rejects after `timeoutMs`. */
  async receive(sock: string, timeoutMs = 5000): Promise<ReceivedFrame[]> {
    const r = await this.call("receive", { sock, timeoutMs }, timeoutMs + 5000);
    return (r.frames as unknown[]).map(decodeFromPeer);
  }

  /** Starts echoing: every message the socket receives is sent back unchanged. */
  async echo(sock: string): Promise<void> {
    await this.call("echo", { sock });
  }

  async stats(sock: string): Promise<PeerStats> {
    const r = await this.call("stats", { sock });
    return {
      echoed: r.echoed as number,
      received: r.received as number,
      sent: r.sent as number,
      echoError: (r.echoError as string | null) ?? null,
    };
  }

  /** Monitor events recorded on the socket since it was created. */
  async events(sock: string): Promise<PeerEvent[]> {
    const r = await this.call("events", { sock });
    return r.events as PeerEvent[];
  }

  /** Waits until at least `count` (default 1) events of `type` were recorded on the socket. */
  async waitEvent(sock: string, type: string, opts: { count?: number; timeoutMs?: number } = {}): Promise<PeerEvent[]> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const r = await this.call("waitEvent", { sock, type, count: opts.count ?? 1, timeoutMs }, timeoutMs + 5000);
    return r.events as PeerEvent[];
  }

  /**
   * Watches the socket for `withinMs`: resolves with the first new `type` event as soon
   * as one is recorded (counting from `afterCount` events of that type), or null if
   * none came. Use it to assert that something does NOT happen during a period.
   */
  async eventWithin(sock: string, type: string, withinMs: number, afterCount = 0): Promise<PeerEvent | null> {
    const r = await this.call("waitEvent", { sock, type, count: afterCount + 1, timeoutMs: withinMs, orTimeout: true }, withinMs + 5000);
    if (r.timedOut) return null;
    const matching = (r.events as PeerEvent[]).filter((e) => e.type === type);
    return matching[afterCount] ?? matching[matching.length - 1] ?? null;
  }

  async close(sock: string): Promise<void> {
    await this.call("close", { sock });
  }

  async list(): Promise<string[]> {
    const r = await this.call("list", {});
    return r.socks as string[];
  }

  /**
   * Asks the peer to exit (closing its sockets), waits for it, and kills it if it
   * has not gone within `timeoutMs`. Never rejects.
   */
  async stop(timeoutMs = 3000): Promise<void> {
    if (!this.alive) return;
    try {
      this.child.stdin!.end();
    } catch {
      /* already closed */
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gone = await Promise.race([
      this.exitedPromise.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!gone) {
      this.kill();
      await this.exitedPromise;
    }
  }

  /** Sends a raw command (for commands without a typed wrapper). */
  call(cmd: string, fields: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
    const deadlineMs = timeoutMs ?? this.callTimeoutMs;
    const sockLabel = typeof fields.sock === "string" ? ` on '${fields.sock}'` : "";
    const what = `${cmd}${sockLabel}`;
    if (!this.alive) return Promise.reject(new Error(`${this.name}: cannot ${what}: peer ${this.exitInfo}${this.stderrHint()}`));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        this.abandoned.add(seq);
        reject(new Error(`${this.name}: ${what} got no answer within ${deadlineMs} ms${this.stderrHint()}`));
      }, deadlineMs);
      this.pending.set(seq, { resolve, reject, timer, what });
      try {
        this.child.stdin!.write(`${JSON.stringify({ ...fields, seq, cmd })}\n`);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(seq);
        reject(new Error(`${this.name}: cannot write ${what}: ${(err as Error).message}`));
      }
    });
  }

  // ---- internals ----------------------------------------------------------

  private onLine(line: string): void {
    let msg: { seq?: unknown; ok?: boolean; error?: string } & Record<string, unknown>;
    try {
      msg = JSON.parse(line);
    } catch {
      process.stderr.write(`${this.name}: unparsable stdout line: ${line.slice(0, 200)}\n`);
      return;
    }
    const seq = typeof msg.seq === "number" ? msg.seq : NaN;
    const p = this.pending.get(seq);
    if (!p) {
      if (this.abandoned.delete(seq)) return; // answered after its deadline: already reported
      if (msg.ok === false) process.stderr.write(`${this.name}: error for unknown request: ${msg.error}\n`);
      return;
    }
    this.pending.delete(seq);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg);
    else p.reject(new Error(`${this.name}: ${p.what} failed: ${msg.error}`));
  }

  private failAll(reason: string): void {
    for (const [seq, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(seq);
      p.reject(new Error(`${reason} while waiting for ${p.what}${this.stderrHint()}`));
    }
  }

  private stderrHint(): string {
    const tail = this.stderrTail.trim();
    return tail ? `\n--- ${this.name} stderr (tail) ---\n${tail.slice(-1500)}` : "";
  }

  private kill(): void {
    try {
      this.child.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
}
