/**
 * Owns one outgoing endpoint of a socket: connect, and on failure or loss retry with exponential
 * backoff (reconnectInterval doubling up to reconnectMaxInterval, reset once a connection got
 * through its handshake). What it needs from the socket is the ConnectorHost below.
 */
import type { Connection } from "./connection.ts";
import type { Endpoint } from "./endpoint.ts";
import type { Transport, TransportStream } from "./transport/transport.ts";

export interface ConnectorHost {
  /** The socket's transport's connect. */
  connect: Transport["connect"];
  /** Wraps a freshly connected stream in a Connection of the socket's. */
  startConnection(stream: TransportStream, endpoint: string): Connection;
  connected(endpoint: string): void;
  retrying(endpoint: string, delayMs: number, error: Error): void;
}

export interface Backoff {
  intervalMs: number;
  maxIntervalMs: number;
}

export class Connector {
  private connection: Connection | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly host: ConnectorHost,
    private readonly endpoint: Endpoint,
    /** The endpoint as written in events and connection names. */
    private readonly key: string,
    private readonly backoff: Backoff,
  ) {}

  attempt(): void {
    this.timer = undefined;
    if (this.stopped) return;
    this.host
      .connect(this.endpoint, (stream) => {
        const connection = this.host.startConnection(stream, this.key);
        this.connection = connection;
        if (this.stopped) queueMicrotask(() => connection.close(undefined, false));
        return connection.handlers;
      })
      .then(
        () => this.host.connected(this.key),
        (error: Error) => {
          if (this.stopped) return;
          const delayMs = this.nextDelay();
          this.host.retrying(this.key, delayMs, error);
          this.schedule(delayMs);
        },
      );
  }

  onConnectionClosed(connection: Connection): void {
    if (connection !== this.connection) return;
    const wasReady = connection.owned !== undefined;
    this.connection = undefined;
    if (this.stopped) return;
    if (wasReady) this.failures = 0;
    this.schedule(this.nextDelay());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.connection?.close(undefined, true);
  }

  private nextDelay(): number {
    const base = Math.max(0, this.backoff.intervalMs);
    const max = this.backoff.maxIntervalMs;
    const delay = max > base ? Math.min(max, base * 2 ** this.failures) : base;
    this.failures = Math.min(this.failures + 1, 30);
    return delay;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.attempt(), delayMs);
  }
}
