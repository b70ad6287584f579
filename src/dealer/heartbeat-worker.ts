/** The worker side of HeartbeatThread: its own connection to the router, and a BEAT per interval. */
import { encodeMessage } from "../protocol/codec.ts";
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
        logger: { warn: (text) => post({ type: "log", message: `heartbeat connection: ${text}` }) },
      });
      connection.connect(message.routerAddress);
      socket = connection;
      // Nothing comes back on this connection; reading it keeps the socket's inbox empty all the same.
      void (async () => {
        for await (const _ of connection);
      })();
      return;
    }
    case "beat":
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
