/** The worker side of HeartbeatThread: its own connection to the router, and a BEAT per interval. */
import { decodeMessage, encodeMessage } from "../protocol/codec.ts";
import { Dealer, ZmtpError, ZmtpErrorCode } from "../zmtp/index.ts";
import { RECONNECT_MAX_INTERVAL_MS } from "../options.ts";
import { parentPort } from "node:worker_threads";
import type { FromHeartbeat, ToHeartbeat } from "./heartbeat-thread.ts";

declare const self: Worker | undefined;

/** The way back to the main thread: `self` in Bun's Web Worker, `parentPort` in a Node worker. */
const mainThread = (() => {
  if (typeof self !== "undefined") {
    const scope = self;
    return {
      post: (message: FromHeartbeat) => scope.postMessage(message),
      listen: (handler: (message: ToHeartbeat) => void) => {
        scope.onmessage = (event: MessageEvent<ToHeartbeat>) => handler(event.data);
      },
    };
  }
  const port = parentPort;
  if (!port) throw new Error("heartbeat-worker runs only as a worker thread (see heartbeat-thread.ts)");
  return {
    post: (message: FromHeartbeat) => port.postMessage(message),
    listen: (handler: (message: ToHeartbeat) => void) => port.on("message", handler),
  };
})();

let socket: Dealer | undefined;
let beat: Uint8Array[] | undefined;
/** The registration this thread vouches for: a TERMINATE must name it. */
let token: string | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

function post(message: FromHeartbeat): void {
  mainThread.post(message);
}

function sendBeat(): void {
  if (!socket || !beat) return;
  // sendTimeout 0: while the router is away a beat is dropped, not queued to arrive late in a burst.
  socket.send(beat).catch((error: unknown) => {
    if (!(error instanceof ZmtpError && error.code === ZmtpErrorCode.AGAIN))
      post({ type: "log", message: `heartbeat not sent: ${(error as Error).message}` });
  });
}

mainThread.listen((message) => {
  switch (message.type) {
    case "open": {
      const connection = new Dealer({
        sendTimeout: 0,
        reconnectInterval: 100,
        reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
        ...message.curve,
        logger: { warn: (text) => post({ type: "log", message: `heartbeat connection: ${text}` }) },
      });
      connection.connect(message.routerAddress);
      socket = connection;
      // The router writes here only to end the process: a revoke with terminate of a method that
      // ignores its cancellation, or never yields (then the main thread reads nothing at all).
      void (async () => {
        for await (const frames of connection) {
          const message = decodeMessage(frames, "dealer");
          if (!message.ok || message.kind !== "TERMINATE" || message.header.token !== token) continue;
          post({ type: "log", message: `terminated by the router: ${message.header.reason}` });
          // Give the log line a moment to reach the main thread's stderr, if it can still run.
          setTimeout(() => process.kill(process.pid, "SIGKILL"), 50);
        }
      })();
      return;
    }
    case "beat":
      token = message.token;
      beat = encodeMessage("BEAT", { token: message.token });
      if (timer) clearInterval(timer);
      timer = setInterval(sendBeat, Math.max(10, message.intervalMs));
      sendBeat();
      return;
    case "close":
      if (timer) clearInterval(timer);
      socket?.close();
      // After close() has handed any last beat to the transport.
      setImmediate(() => post({ type: "closed" }));
      return;
  }
});
