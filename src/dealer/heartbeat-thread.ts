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

/** Messages main → worker. */
export type ToHeartbeat = { type: "open"; routerAddress: string } | { type: "beat"; token: string; intervalMs: number } | { type: "close" };

/** Messages worker → main. */
export type FromHeartbeat = { type: "log"; message: string } | { type: "closed" };

/**
 * Where the worker's code is. In the compiled binary (built with heartbeat-worker.ts as a second
 * entrypoint, see scripts/build.ts) entrypoints live under the bundle root, src/ stripped.
 */
function workerEntry(): string {
  if (import.meta.url.startsWith("file:///$bunfs/")) return "./dealer/heartbeat-worker.ts";
  return new URL("./heartbeat-worker.ts", import.meta.url).href;
}

export class HeartbeatThread {
  private readonly worker: Worker;
  private closing: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;

  constructor(
    routerAddress: string,
    private readonly onLog: (message: string) => void,
  ) {
    this.worker = new Worker(workerEntry());
    this.worker.onmessage = (event: MessageEvent<FromHeartbeat>) => {
      if (event.data.type === "log") this.onLog(event.data.message);
      else this.closedResolve?.();
    };
    this.worker.onerror = (event) => this.onLog(`the heartbeat thread failed: ${event.message}`);
    this.post({ type: "open", routerAddress });
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
