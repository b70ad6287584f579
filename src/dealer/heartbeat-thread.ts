/**
 * The dealer's heartbeat, on its own thread. A service method that computes for 30 s without
 * yielding blocks the event loop, and with it the dealer's connection: unanswered, the router's
 * PINGs would get a busy dealer declared lost and its work run twice (celery#5935). So a worker
 * thread opens a second, tiny connection to the router and sends BEAT with the registration's
 * token every heartbeat interval; the router counts each BEAT as traffic on the dealer's own
 * connection (docs/PROTOCOL.md §10). A frozen process (SIGSTOP) stops both, as it should.
 *
 * Requests and replies stay on the main thread's connection: handing each one across threads
 * cost a busy dealer about as much CPU as all its other work, and two thread wake-ups per call.
 */

import { Worker as NodeWorker } from "node:worker_threads";

/** Messages main → worker. */
export type ToHeartbeat =
  | { type: "open"; routerAddress: string; curve: { curveServerKey?: string; curveSecretKey?: string } }
  | { type: "beat"; token: string; intervalMs: number }
  | { type: "close" };

/** Messages worker → main. */
export type FromHeartbeat = { type: "log"; message: string } | { type: "closed" };

/**
 * Where the worker's code is: beside this module, with its extension (.ts in the sources that Bun
 * runs, .js in the compiled package, lib/). In the compiled binary (built with
 * heartbeat-worker.ts as a second entrypoint, see scripts/build.ts) entrypoints live under the
 * bundle root, src/ stripped.
 */
function workerEntry(): string {
  if (import.meta.url.startsWith("file:///$bunfs/")) return "./dealer/heartbeat-worker.ts";
  const extension = import.meta.url.endsWith(".js") ? ".js" : ".ts";
  return new URL(`./heartbeat-worker${extension}`, import.meta.url).href;
}

/** What HeartbeatThread needs of a thread, whichever API started it. */
interface WorkerHandle {
  postMessage(message: ToHeartbeat): void;
  terminate(): void;
}

/**
 * Bun has the Web Worker API (a global `Worker`); Node has none before version 22 and no `self`
 * in its workers, so there the thread comes from node:worker_threads.
 */
function startWorker(entry: string, onMessage: (message: FromHeartbeat) => void, onError: (message: string) => void): WorkerHandle {
  if (typeof Worker !== "undefined") {
    const worker = new Worker(entry);
    worker.onmessage = (event: MessageEvent<FromHeartbeat>) => onMessage(event.data);
    worker.onerror = (event) => onError(event.message);
    return worker;
  }
  const worker = new NodeWorker(new URL(entry));
  worker.on("message", onMessage);
  worker.on("error", (error: Error) => onError(error.message));
  return {
    postMessage: (message) => worker.postMessage(message),
    terminate: () => void worker.terminate(),
  };
}

export class HeartbeatThread {
  private readonly worker: WorkerHandle;
  private closing: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;

  constructor(
    routerAddress: string,
    private readonly onLog: (message: string) => void,
    /** The dealer's CURVE options: the second connection is encrypted and identified like the first. */
    curve: { curveServerKey?: string; curveSecretKey?: string } = {},
  ) {
    this.worker = startWorker(
      workerEntry(),
      (message) => {
        if (message.type === "log") this.onLog(message.message);
        else this.closedResolve?.();
      },
      (message) => this.onLog(`the heartbeat thread failed: ${message}`),
    );
    this.post({ type: "open", routerAddress, curve });
  }

  /** Beats for the registration with this token from now on (each WELCOME brings a new one). */
  vouchFor(token: string, intervalMs: number): void {
    this.post({ type: "beat", token, intervalMs });
  }

  /** Stops beating and ends the thread. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.closedResolve?.(), 1000);
      this.closedResolve = () => {
        clearTimeout(timer);
        this.closedResolve = undefined;
        this.worker.terminate();
        resolve();
      };
      this.post({ type: "close" });
    });
    return this.closing;
  }

  private post(message: ToHeartbeat): void {
    this.worker.postMessage(message);
  }
}
