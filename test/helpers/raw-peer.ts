/**
 * A hand-driven ZMTP peer over node:net (works under Bun and Node): it writes exactly the bytes a
 * test asks for, bad ones included, and records what our socket sends back (greeting, commands,
 * messages) and when the connection closes.
 *
 *   const raw = await RawPeer.connect(router.lastEndpoint!);
 *   await raw.handshake({ socketType: "DEALER", identity: "raw" });
 *   raw.sendMessage(["hello"]);
 *   await raw.closedWithin(2000, "our Router to close the connection");
 *
 * Or listen, for our Dealer to connect to:
 *
 *   const server = await RawPeer.listen("tcp://127.0.0.1:0");
 *   dealer.connect(server.endpoint);
 *   const raw = await server.accepted(2000);
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import { unlinkSync } from "node:fs";
import {
  type Command,
  Decoder,
  encodeCommand,
  encodeFrame,
  encodeGreeting,
  encodeMetadata,
  type Greeting,
  parseCommand,
} from "../../src/zmtp/codec.ts";
import { parseEndpoint } from "../../src/zmtp/endpoint.ts";
import { waitFor } from "./wait.ts";

export interface ReceivedCommand extends Command {
  at: number;
}

export class RawPeer {
  /** Our socket's greeting, once read. */
  greeting: Greeting | undefined;
  readonly commands: ReceivedCommand[] = [];
  readonly messages: Buffer[][] = [];
  /** Set when what our socket sent could not be decoded. */
  decodeError: Error | undefined;
  /** When the connection closed (ms since epoch), undefined while open. */
  closedAt: number | undefined;
  private readonly decoder = new Decoder();
  private partial: Buffer[] = [];
  private readonly closedPromise: Promise<void>;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    // Errors (ECONNRESET when our side destroys the connection) end in "close" too.
    socket.on("error", () => {});
    this.closedPromise = new Promise((resolve) => {
      socket.once("close", () => {
        this.closedAt = Date.now();
        resolve();
        this.notify();
      });
    });
  }

  /** Connects to a tcp:// or ipc:// endpoint. */
  static connect(endpoint: string, timeoutMs = 2000): Promise<RawPeer> {
    const parsed = parseEndpoint(endpoint);
    const socket = parsed.transport === "tcp" ? net.connect({ host: parsed.host, port: parsed.port }) : net.connect({ path: parsed.path });
    const peer = new RawPeer(socket);
    return waitFor(
      new Promise<RawPeer>((resolve, reject) => {
        socket.once("connect", () => resolve(peer));
        socket.once("error", reject);
      }),
      { timeoutMs, message: `a raw connection to ${endpoint}` },
    );
  }

  /** Listens on a tcp:// (port 0 allowed) or ipc:// endpoint; each accepted connection becomes a RawPeer. */
  static async listen(endpoint: string): Promise<RawServer> {
    const parsed = parseEndpoint(endpoint);
    if (parsed.transport === "ipc") removeFile(parsed.path);
    const accepted: RawPeer[] = [];
    const waiters: (() => void)[] = [];
    const server = net.createServer((socket) => {
      accepted.push(new RawPeer(socket));
      for (const w of waiters.splice(0)) w();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      if (parsed.transport === "tcp") server.listen(parsed.port, parsed.host, () => resolve());
      else server.listen(parsed.path, () => resolve());
    });
    const address = server.address();
    const bound =
      parsed.transport === "tcp" && typeof address === "object" && address !== null ? `tcp://${parsed.host}:${address.port}` : endpoint;
    return {
      endpoint: bound,
      peers: accepted,
      async accepted(timeoutMs: number, index = 0): Promise<RawPeer> {
        if (accepted.length <= index) {
          await waitFor(
            new Promise<void>((resolve) => {
              const check = () => (accepted.length > index ? resolve() : waiters.push(check));
              check();
            }),
            { timeoutMs, message: `connection ${index + 1} to the raw server on ${bound}` },
          );
        }
        return accepted[index];
      },
      close() {
        for (const peer of accepted) peer.destroy();
        server.close();
        if (parsed.transport === "ipc") removeFile(parsed.path);
      },
    };
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Our side of the greeting: ZMTP 3.1 NULL, as-server false unless asked. */
  sendGreeting(options: { minor?: number; asServer?: boolean } = {}): void {
    this.write(encodeGreeting("NULL", options.asServer ?? false, options.minor ?? 1));
  }

  sendReady(metadata: Record<string, string | Uint8Array>): void {
    this.write(encodeFrame(encodeCommand("READY", encodeMetadata(metadata)), { command: true }));
  }

  sendCommand(name: string, data: Uint8Array = Buffer.alloc(0)): void {
    this.write(encodeFrame(encodeCommand(name, data), { command: true }));
  }

  sendMessage(frames: (string | Uint8Array)[]): void {
    const bytes = frames.map((f, i) => encodeFrame(typeof f === "string" ? Buffer.from(f) : f, { more: i < frames.length - 1 }));
    this.write(Buffer.concat(bytes));
  }

  /**
   * Greeting and READY both ways. Resolves once our socket's READY has arrived (our side treats
   * the handshake as complete as soon as it has read ours).
   */
  async handshake(
    options: { socketType?: string; identity?: string | Uint8Array; minor?: number; timeoutMs?: number } = {},
  ): Promise<void> {
    this.sendGreeting({ minor: options.minor });
    this.sendReady({ "Socket-Type": options.socketType ?? "DEALER", Identity: options.identity ?? "" });
    await this.nextCommand("READY", options.timeoutMs ?? 2000, "our socket's READY");
  }

  /** Resolves with the first command `name` among those received from index `fromIndex` on (waiting for it). */
  async nextCommand(name: string, timeoutMs: number, what: string, fromIndex = 0): Promise<ReceivedCommand> {
    let found: ReceivedCommand | undefined;
    await this.until(
      () => (found = this.commands.slice(fromIndex).find((c) => c.name === name)) !== undefined || this.closed,
      timeoutMs,
      what,
    );
    if (!found) throw new Error(`the connection closed before ${what} arrived${this.describeCommands()}`);
    return found;
  }

  /** Resolves with the `index`-th message (0-based) our socket sent. */
  async message(index: number, timeoutMs: number, what: string): Promise<Buffer[]> {
    await this.until(() => this.messages.length > index || this.closed, timeoutMs, what);
    if (this.messages.length <= index) throw new Error(`the connection closed before ${what} arrived`);
    return this.messages[index];
  }

  /** Resolves when the connection is closed; rejects at the deadline saying what was expected. */
  async closedWithin(timeoutMs: number, message: string): Promise<void> {
    await waitFor(this.closedPromise, { timeoutMs, message: `${message}${this.describeCommands()}` });
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  describeCommands(): string {
    return this.commands.length === 0 ? "" : ` (commands received: ${this.commands.map((c) => c.name).join(", ")})`;
  }

  private until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return waitFor(
      new Promise<void>((resolve) => {
        const check = () => {
          if (!predicate()) return;
          this.listeners.delete(check);
          resolve();
        };
        this.listeners.add(check);
        check();
      }),
      { timeoutMs, message: what },
    );
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private onData(chunk: Buffer): void {
    if (this.decodeError) return;
    try {
      this.decoder.push(chunk);
      for (let item = this.decoder.next(); item !== undefined; item = this.decoder.next()) {
        if (item.kind === "greeting") this.greeting = item.greeting;
        else if (item.kind !== "frame") continue;
        else if (item.frame.command) this.commands.push({ ...parseCommand(Buffer.from(item.frame.body)), at: Date.now() });
        else {
          this.partial.push(Buffer.from(item.frame.body));
          if (!item.frame.more) {
            this.messages.push(this.partial);
            this.partial = [];
          }
        }
      }
    } catch (error) {
      this.decodeError = error as Error;
    }
    this.notify();
  }
}

export interface RawServer {
  /** The bound endpoint, with the real port. */
  endpoint: string;
  /** Every connection accepted so far. */
  peers: RawPeer[];
  /** The `index`-th accepted connection, waiting for it up to `timeoutMs`. */
  accepted(timeoutMs: number, index?: number): Promise<RawPeer>;
  close(): void;
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Not there.
  }
}
