/** Owns the Bun transport: Bun.listen/Bun.connect, Bun's fastest socket API. */
import type { Buffer } from "node:buffer";
import type { Endpoint } from "../endpoint.ts";
import {
  bindError,
  removeStaleSocketFile,
  type StreamHandlers,
  type Transport,
  type TransportListener,
  type TransportStream,
} from "./transport.ts";

type BunSocket = import("bun").Socket<BunStream>;

/**
 * Bun sockets do not buffer: write() takes what the kernel accepts and returns the count.
 * This wrapper keeps the unwritten tail and sends it on drain, before anything newer.
 */
class BunStream implements TransportStream {
  handlers: StreamHandlers | null = null;
  private held: Buffer[] = [];
  private ending = false;
  private closed = false;

  constructor(
    private readonly socket: BunSocket,
    readonly remoteAddress: string,
  ) {}

  write(data: Buffer): boolean {
    if (this.closed) return true;
    if (this.held.length > 0) {
      this.held.push(data);
      return false;
    }
    const written = this.socket.write(data);
    if (written === data.length) return true;
    this.held.push(data.subarray(Math.max(0, written)));
    return false;
  }

  onDrain(): void {
    while (this.held.length > 0) {
      const next = this.held[0];
      const written = this.socket.write(next);
      if (written < next.length) {
        this.held[0] = next.subarray(Math.max(0, written));
        return;
      }
      this.held.shift();
    }
    if (this.ending) {
      this.socket.end();
      return;
    }
    this.handlers?.drain();
  }

  end(): void {
    if (this.held.length === 0) this.socket.end();
    else this.ending = true;
  }

  destroy(): void {
    this.held = [];
    this.socket.terminate();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.held = [];
    this.handlers?.close(error);
  }
}

function address(endpoint: Endpoint): { hostname: string; port: number } | { unix: string } {
  return endpoint.transport === "tcp" ? { hostname: endpoint.host, port: endpoint.port } : { unix: endpoint.path };
}

const socketHandlers = {
  data(socket: BunSocket, chunk: Buffer) {
    socket.data.handlers?.data(chunk);
  },
  drain(socket: BunSocket) {
    socket.data.onDrain();
  },
  close(socket: BunSocket, error?: Error) {
    socket.data.onClose(error);
  },
  error(socket: BunSocket, error: Error) {
    socket.data.onClose(error);
  },
  end(socket: BunSocket) {
    socket.end();
  },
};

export const bunTransport: Transport = {
  name: "bun",

  async listen(endpoint, accept) {
    if (endpoint.transport === "ipc") removeStaleSocketFile(endpoint.path);
    let listener: import("bun").TCPSocketListener<BunStream> | import("bun").UnixSocketListener<BunStream>;
    try {
      listener = Bun.listen<BunStream>({
        ...(address(endpoint) as { hostname: string; port: number }),
        socket: {
          ...socketHandlers,
          open(socket) {
            const remote = endpoint.transport === "tcp" ? `${socket.remoteAddress}:${socket.remotePort}` : endpoint.path;
            const stream = new BunStream(socket, remote);
            socket.data = stream;
            socket.setNoDelay?.(true);
            stream.handlers = accept(stream);
          },
        },
      });
    } catch (cause) {
      throw bindError(endpoint, cause);
    }
    const bound: Endpoint = endpoint.transport === "tcp" ? { ...endpoint, port: (listener as { port: number }).port } : endpoint;
    const result: TransportListener = {
      endpoint: bound,
      close() {
        // Not stop(true): that would cut accepted connections before Socket.close() lets them linger.
        listener.stop(false);
        if (endpoint.transport === "ipc") removeStaleSocketFile(endpoint.path);
      },
    };
    return result;
  },

  async connect(endpoint, attach) {
    let stream: BunStream | undefined;
    await Bun.connect<BunStream>({
      ...(address(endpoint) as { hostname: string; port: number }),
      socket: {
        ...socketHandlers,
        open(socket) {
          const remote = endpoint.transport === "tcp" ? `${endpoint.host}:${endpoint.port}` : endpoint.path;
          stream = new BunStream(socket, remote);
          socket.data = stream;
          socket.setNoDelay?.(true);
          stream.handlers = attach(stream);
        },
      },
    });
    if (!stream) throw new Error(`connection to ${describe(endpoint)} did not open`);
    return stream;
  },
};

function describe(endpoint: Endpoint): string {
  return endpoint.transport === "tcp" ? `tcp://${endpoint.host}:${endpoint.port}` : `ipc://${endpoint.path}`;
}
