/**
 * A router with its dealers, clients and child processes, started for one test and torn down
 * after it, on one transport. Every part is silent and uses the router's real address.
 *
 * @example
 * const cluster = new Cluster("ipc");
 * afterEach(() => cluster.dispose());
 * const router = await cluster.router({ routerMode: RouterMode.FIFO });
 * const echo = await cluster.dealer((options) => new EchoService(options));
 * const client = await cluster.client();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join, resolve } from "node:path";
import {
  ClientDealer,
  type ClientDealerOptions,
  type CurveKeyPair,
  curveKeyPair,
  type ServiceDealer,
  type ServiceDealerOptions,
  ServiceRouter,
  type ServiceRouterOptions,
  silentLogger,
} from "../../src/index.ts";
import { Gate } from "../fixtures/services.ts";
import type { ChildServiceName } from "../fixtures/services.ts";
import { uniqueEndpoint, waitFor } from "./wait.ts";
import { onLines } from "./lines.ts";

export const TRANSPORTS = ["tcp", "ipc"] as const;
export type TransportName = (typeof TRANSPORTS)[number];
/** tcp with CURVE on every connection: the router has a key pair, each dealer and client its own. */
export const CURVE_TCP = "tcp+curve" as const;
export type ClusterTransport = TransportName | typeof CURVE_TCP;

export const ROOT = resolve(import.meta.dir, "../..");
export const BUN = join(ROOT, "node_modules/.bin/bun");

/** Deadline for the cleanup of one part; a part that does not stop in time fails the test. */
const DISPOSE_TIMEOUT_MS = 5_000;

export class Cluster {
  private routers: ServiceRouter[] = [];
  private dealers: ServiceDealer[] = [];
  private clients: ClientDealer[] = [];
  private children: DealerProcess[] = [];
  private current: ServiceRouter | undefined;
  /** Set for CURVE_TCP: the keys every part of the cluster uses. */
  readonly curve: { router: CurveKeyPair; dealer: CurveKeyPair; client: CurveKeyPair } | undefined;

  constructor(readonly transport: ClusterTransport) {
    this.curve = transport === CURVE_TCP ? { router: curveKeyPair(), dealer: curveKeyPair(), client: curveKeyPair() } : undefined;
  }

  private get endpointTransport(): TransportName {
    return this.transport === CURVE_TCP ? "tcp" : this.transport;
  }

  /** The router started last. */
  get address(): string {
    if (!this.current) throw new Error("start a router first");
    return this.current.address;
  }

  /** Starts a router on a fresh endpoint of this transport, or on `options.address`. */
  async router(options: ServiceRouterOptions = {}): Promise<ServiceRouter> {
    const curve = this.curve ? { curveSecretKey: this.curve.router.secretKey } : {};
    const router = new ServiceRouter({
      address: uniqueEndpoint(this.endpointTransport),
      shutdownGrace: 0.2,
      logger: silentLogger,
      ...curve,
      ...options,
    });
    await router.start();
    this.routers.push(router);
    this.current = router;
    return router;
  }

  /** Builds a dealer with silent logging and the router's address, and starts it. */
  async dealer<T extends ServiceDealer>(make: (options: ServiceDealerOptions) => T, options: ServiceDealerOptions = {}): Promise<T> {
    const dealer = this.dealerStopped(make, options);
    await waitFor(dealer.start(), { timeoutMs: 5_000, message: `${dealer.serviceName} to register` });
    return dealer;
  }

  /** Builds a dealer without starting it (for tests of start() itself). */
  dealerStopped<T extends ServiceDealer>(make: (options: ServiceDealerOptions) => T, options: ServiceDealerOptions = {}): T {
    const curve = this.curve ? { curveServerKey: this.curve.router.publicKey, curveSecretKey: this.curve.dealer.secretKey } : {};
    const dealer = make({ routerAddress: this.address, logger: silentLogger, startTimeout: 5, ...curve, ...options });
    this.dealers.push(dealer);
    return dealer;
  }

  /** A client that has been welcomed by the router. */
  async client(options: ClientDealerOptions = {}): Promise<ClientDealer> {
    const client = this.clientUnconnected(options);
    await waitFor(client.connect(), { timeoutMs: 5_000, message: "the client to be welcomed" });
    return client;
  }

  clientUnconnected(options: ClientDealerOptions = {}): ClientDealer {
    const curve = this.curve ? { curveServerKey: this.curve.router.publicKey, curveSecretKey: this.curve.client.secretKey } : {};
    const client = new ClientDealer({ routerAddress: this.address, logger: silentLogger, timeout: 10, ...curve, ...options });
    this.clients.push(client);
    return client;
  }

  /** Runs test/fixtures/dealer-process.ts and waits for it to register. */
  async spawnDealer(service: ChildServiceName): Promise<DealerProcess> {
    const child = new DealerProcess(this.address, service);
    this.children.push(child);
    const registered = await child.event((event) => event.event === "registered", 10_000, `child ${service} to register`);
    child.dealerId = registered.dealerId as string;
    return child;
  }

  /** Stops everything, clients first and the routers last; held calls are released first. */
  async dispose(): Promise<void> {
    Gate.openAll();
    const clients = this.clients.splice(0);
    const dealers = this.dealers.splice(0);
    const children = this.children.splice(0);
    const routers = this.routers.splice(0);
    this.current = undefined;
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(clients.map((client) => waitFor(client.close(), { timeoutMs: DISPOSE_TIMEOUT_MS, message: "a client to close" })));
    await Promise.all(
      dealers.map((dealer) => waitFor(dealer.stop(), { timeoutMs: DISPOSE_TIMEOUT_MS, message: `dealer ${dealer.serviceName} to stop` })),
    );
    await Promise.all(routers.map((router) => waitFor(router.stop(), { timeoutMs: DISPOSE_TIMEOUT_MS, message: "the router to stop" })));
    await Promise.all(
      children.map((child) => waitFor(child.exited, { timeoutMs: DISPOSE_TIMEOUT_MS, message: `child ${child.pid} to exit` })),
    );
  }
}

export type ChildEvent = Record<string, unknown> & { event: string };

/** A dealer child process; its stdout is a stream of JSON events. */
export class DealerProcess {
  readonly events: ChildEvent[] = [];
  /** The router's id for it, from its first registration. */
  dealerId: string | undefined;
  readonly exited: Promise<number | null>;
  private readonly process: ChildProcess;
  private readonly waiters = new Set<() => void>();
  private stderr = "";

  constructor(address: string, service: ChildServiceName) {
    this.process = spawn(BUN, [join(ROOT, "test/fixtures/dealer-process.ts"), address, service], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    onLines(this.process.stdout!, (line) => {
      if (line.trim() === "") return;
      this.events.push(JSON.parse(line) as ChildEvent);
      for (const wake of [...this.waiters]) wake();
    });
    this.process.stderr!.setEncoding("utf8");
    this.process.stderr!.on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolveExit) =>
      this.process.once("exit", (code) => {
        resolveExit(code);
        for (const wake of [...this.waiters]) wake();
      }),
    );
  }

  get pid(): number {
    return this.process.pid!;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill(signal);
  }

  /**
   * The first event so far, or yet to come, that matches `predicate` (make it specific: a tag,
   * a dealerId); rejects at the deadline or when the child exits first, with its stderr.
   */
  event(predicate: (event: ChildEvent) => boolean, timeoutMs: number, message: string): Promise<ChildEvent> {
    return new Promise((resolveEvent, reject) => {
      const check = () => {
        const found = this.events.find(predicate);
        if (found) {
          done();
          resolveEvent(found);
        } else if (this.process.exitCode !== null || this.process.signalCode !== null) {
          done();
          reject(
            new Error(
              `child ${this.pid} exited (${this.process.exitCode ?? this.process.signalCode}) before ${message}; stderr: ${this.stderr}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `Timed out after ${timeoutMs} ms waiting for: ${message} (child events: ${JSON.stringify(this.events)}; stderr: ${this.stderr})`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}
