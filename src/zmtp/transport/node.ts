/** Owns the node:net transport, so VoidRail's client runs in Node applications too. */
import type { Buffer } from "node:buffer";
import net from "node:net";
import type { Endpoint } from "../endpoint.ts";
import { bindError, removeStaleSocketFile, type StreamHandlers, type Transport, type TransportStream } from "./transport.ts";

class NodeStream implements TransportStream {
  handlers: StreamHandlers | null = null;
  private closed = false;

  constructor(
    private readonly socket: net.Socket,
    readonly remoteAddress: string,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.handlers?.data(chunk));
    socket.on("drain", () => this.handlers?.drain());
    socket.on("error", (error) => this.onClose(error));
    socket.on("close", () => this.onClose());
  }

  // node:net buffers everything itself; false means its buffer is past the high-water mark.
  write(data: Buffer): boolean {
    if (this.closed) return true;
    return this.socket.write(data);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  private onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handlers?.close(error);
  }
}

function listenOptions(endpoint: Endpoint): net.ListenOptions {
  return endpoint.transport === "tcp" ? { host: endpoint.host, port: endpoint.port } : { path: endpoint.path };
}

export const nodeTransport: Transport = {
  name: "node",

  listen(endpoint, accept) {
    if (endpoint.transport === "ipc") removeStaleSocketFile(endpoint.path);
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => {
        const remote = endpoint.transport === "tcp" ? `${socket.remoteAddress}:${socket.remotePort}` : endpoint.path;
        const stream = new NodeStream(socket, remote);
        stream.handlers = accept(stream);
      });
      server.once("error", (cause) => reject(bindError(endpoint, cause)));
      server.listen(listenOptions(endpoint), () => {
        const info = server.address();
        const bound: Endpoint =
          endpoint.transport === "tcp" && info && typeof info === "object" ? { ...endpoint, port: info.port } : endpoint;
        resolve({
          endpoint: bound,
          close() {
            server.close();
            if (endpoint.transport === "ipc") removeStaleSocketFile(endpoint.path);
          },
        });
      });
    });
  },

  connect(endpoint, attach) {
    return new Promise((resolve, reject) => {
      const socket =
        endpoint.transport === "tcp" ? net.connect({ host: endpoint.host, port: endpoint.port }) : net.connect({ path: endpoint.path });
      const fail = (error: Error) => reject(error);
      socket.once("error", fail);
      socket.once("connect", () => {
        socket.off("error", fail);
        const remote = endpoint.transport === "tcp" ? `${endpoint.host}:${endpoint.port}` : endpoint.path;
        const stream = new NodeStream(socket, remote);
        stream.handlers = attach(stream);
        resolve(stream);
      });
    });
  },
};
