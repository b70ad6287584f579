/**
 * Owns the ServiceRouter facade: it builds the router's parts from the options, binds and closes
 * the socket, and runs the shutdown sequence. The router is the broker: dealers register their
 * methods; client requests wait in one queue per method and go, in arrival order, to a dealer
 * with a free slot. It never parses payloads: it rewrites ids in headers and forwards argument
 * and result frames untouched. Every decision lives in the parts (see docs/ARCHITECTURE.md).
 */
import { type MethodInfo, RouterMode, ShuttingDownError } from "../protocol/index.ts";
import { Deadlines } from "../util/deadlines.ts";
import type { Logger } from "../util/log.ts";
import { consumeMessages } from "../util/receive-loop.ts";
import { type CurveAuthenticator, curvePublicKey, Router } from "../zmtp/index.ts";
import { Authenticator } from "./auth.ts";
import { type Call, CallTable, type ReplySink } from "./calls.ts";
import type { ClientExtension, OwnedCallRequest } from "./extension.ts";
import { resolveRouterConfig, type RouterConfig, type ServiceRouterOptions } from "./config.ts";
import { Dispatcher, strategyFor } from "./dispatch.ts";
import { HelloDeadline } from "./hello-deadline.ts";
import { RouterEvents } from "./events.ts";
import { Inbound } from "./inbound.ts";
import { RouterInfoBuilder } from "./info.ts";
import { Outbound } from "./outbound.ts";
import { Queues } from "./queues.ts";
import { MethodRateLimits, type RateLimitStat } from "./rate-limits.ts";
import { DealerRegistry } from "./registry.ts";
import { Sessions } from "./sessions.ts";

export { RouterMode };
export type { ServiceRouterOptions };

/**
 * The central router. Binds a ZeroMQ ROUTER socket; services and clients connect to it.
 *
 * @example
 * const router = new ServiceRouter({ address: "tcp://127.0.0.1:5555", routerMode: RouterMode.FIFO, heartbeatTimeout: 5 });
 * await router.start();
 * // ...
 * await router.stop();
 */
export class ServiceRouter {
  readonly mode: RouterMode;
  readonly requireDealerAuth: boolean;
  readonly requireClientAuth: boolean;
  /** What happens to calls and dealers; the hook for metrics and the task layer. */
  readonly events: RouterEvents;
  private readonly config: RouterConfig;
  private readonly log: Logger;
  private readonly outbound: Outbound;
  private readonly queues: Queues<Call>;
  private readonly calls: CallTable;
  private readonly registry: DealerRegistry;
  private readonly sessions: Sessions;
  private readonly inbound: Inbound;
  private readonly infoBuilder: RouterInfoBuilder;
  private readonly deadlines = new Deadlines();
  private readonly rates: MethodRateLimits;
  private socket: Router | null = null;
  /** Set while running with client keys required: each new connection must HELLO in time. */
  private hello: HelloDeadline | null = null;
  private boundAddress = "";
  private startedAt = 0;
  private stopping = false;
  private extension: ClientExtension | undefined;

  constructor(options: ServiceRouterOptions = {}) {
    const config = resolveRouterConfig(options, process.env);
    this.config = config;
    this.mode = config.mode;
    this.requireDealerAuth = config.requireDealerAuth;
    this.requireClientAuth = config.requireClientAuth;
    const log = (this.log = config.logger);
    const isStopping = () => this.stopping;
    const extension = () => this.extension;
    const hello = () => this.hello;
    this.events = new RouterEvents((name, error) => log.error(`a ${name} listener failed: ${(error as Error)?.stack ?? error}`));
    this.outbound = new Outbound(log);
    this.queues = new Queues<Call>(config.maxQueueLength, config.queueLimits);
    this.calls = new CallTable(this.queues, this.outbound, this.events, log);
    const strategy = strategyFor(config.mode);
    const rates = (this.rates = new MethodRateLimits(config.rateLimits));
    const dispatcher = new Dispatcher(strategy, this.queues, this.calls, this.events, rates);
    rates.onAvailable = (method) => dispatcher.serveMethod(method);
    this.events.on("dealer.registered", (dealer) => {
      for (const [method, info] of dealer.methods) if (info.task?.rateLimit !== undefined) rates.declared(method, info.task.rateLimit);
    });
    this.registry = new DealerRegistry(this.calls, this.queues, dispatcher, this.events, log, {
      defaultMaxConcurrent: strategy.defaultMaxConcurrent,
      isStopping,
    });
    dispatcher.registry = this.registry;
    const auth = new Authenticator(
      config.dealerApiKeys,
      config.clientApiKeys,
      config.requireDealerAuth,
      config.requireClientAuth,
      config.curveRoles,
    );
    this.sessions = new Sessions({
      auth,
      registry: this.registry,
      dispatcher,
      calls: this.calls,
      outbound: this.outbound,
      log,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      maxMessageSize: config.maxMessageSize,
      isStopping,
      extension,
      hello,
      publicKeyOf: (routingId) => this.socket?.publicKeyOf(routingId) ?? "",
    });
    this.infoBuilder = new RouterInfoBuilder({
      registry: this.registry,
      queues: this.queues,
      calls: this.calls,
      mode: config.mode,
      address: () => this.address,
      startedAt: () => this.startedAt,
      requireDealerAuth: config.requireDealerAuth,
      requireClientAuth: config.requireClientAuth,
    });
    this.inbound = new Inbound({
      sessions: this.sessions,
      registry: this.registry,
      dispatcher,
      calls: this.calls,
      info: this.infoBuilder,
      outbound: this.outbound,
      deadlines: this.deadlines,
      log,
      maxRedispatch: config.maxRedispatch,
      defaultTimeoutMs: config.defaultTimeoutMs,
      isStopping,
      socket: () => this.socket,
      extension,
      hello,
    });
  }

  /** The bound endpoint (with the real port when port 0 was asked for). */
  get address(): string {
    return this.boundAddress || this.config.address;
  }

  async start(): Promise<void> {
    if (this.socket) return;
    const { heartbeatIntervalMs, heartbeatTimeoutMs, handshakeIntervalMs } = this.config;
    const socket = new Router({
      heartbeatInterval: heartbeatIntervalMs,
      heartbeatTimeout: heartbeatTimeoutMs,
      handshakeInterval: handshakeIntervalMs,
      // Replies to a peer that left are dropped silently: its state is already gone.
      mandatory: false,
      // Without a bound, one peer announcing a huge frame would make the router allocate it. A
      // message over it is skipped as it arrives and answered for that call alone (oversize).
      maxMessageSize: this.config.maxMessageSize,
      discardOversize: true,
      // Binary frames are forwarded unread: above 1 MiB they stay the pieces they arrived in, and
      // go out as those pieces (no copy into one buffer, which cost most of the router's time).
      keepPartsAbove: 1024 * 1024,
      sendHighWaterMark: 10_000,
      receiveHighWaterMark: 10_000,
      logger: { warn: (message) => this.log.warn(message) },
      ...curveServerOptions(this.config),
    });
    socket.events.on("disconnect", ({ routingId, error }) => this.sessions.gone(routingId, error?.message));
    socket.events.on("oversize", ({ routingId, frames, size, limit }) => this.inbound.oversize(routingId, frames, size, limit));
    // Without client keys a connection may stay silent at the VoidRail level (HELLO is optional
    // then); with them, one that never authenticates must not hold its socket forever.
    if (this.requireClientAuth) {
      const hello = new HelloDeadline(socket, this.config.helloTimeoutMs);
      socket.events.on("handshake", ({ routingId }) => hello.start(routingId));
      this.hello = hello;
    }
    await socket.bind(this.config.address);
    this.socket = socket;
    this.outbound.attach(socket);
    this.boundAddress = socket.lastEndpoint ?? this.config.address;
    this.startedAt = Date.now();
    this.stopping = false;
    const curve = this.config.curveSecretKey ? `, CURVE public key ${curvePublicKey(this.config.curveSecretKey)}` : "";
    this.log.info(`router listening on ${this.boundAddress} (mode ${this.mode}${curve})`);
    const rateLimits = Object.entries(this.config.rateLimits);
    if (rateLimits.length > 0) this.log.info(`rate limits: ${rateLimits.map(([method, rate]) => `${method} ${rate}`).join(", ")}`);
    void consumeMessages(socket, (frames) => this.inbound.message(frames), this.log, "router");
  }

  /**
   * Stops accepting work, fails queued requests with SHUTTING_DOWN, gives running ones
   * `shutdownGrace` seconds, fails the rest, then closes the socket.
   */
  async stop(): Promise<void> {
    const socket = this.socket;
    if (!socket || this.stopping) return;
    this.stopping = true;
    const { calls, queues } = this;
    for (const call of queues.waitingCalls()) calls.finished(call, new ShuttingDownError("the router is stopping"));
    queues.drainAll();
    const { shutdownGrace } = this.config;
    if (calls.onDealers.size > 0)
      this.log.info(`router stopping: waiting up to ${shutdownGrace} s for ${calls.onDealers.size} call(s) in flight`);
    const deadline = Date.now() + shutdownGrace * 1000;
    while (calls.onDealers.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const call of [...calls.onDealers.values()]) {
      if (call.state === "running") calls.finished(call, new ShuttingDownError("the router stopped before the request finished"));
    }
    // Let the failure replies reach the transport before the sockets close.
    await new Promise((r) => setImmediate(r));
    this.sessions.clear();
    this.deadlines.clear();
    this.rates.clear();
    this.hello?.clear();
    this.hello = null;
    socket.close();
    this.socket = null;
    this.outbound.attach(null);
    this.registry.clear();
    calls.onDealers.clear();
    this.log.info("router stopped");
  }

  /** `await using router = new ServiceRouter(...)` stops it when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  // ---- the seam for the layer above (src/tasks/): it serves SUBMIT/TASK and owns calls ----

  /** @internal Hands SUBMIT, TASK and unmatched CANCELs of clients to `extension`. */
  attachExtension(extension: ClientExtension): void {
    this.extension = extension;
  }

  /** @internal What the dealers offering `method` registered for it, if any dealer offers it. */
  offeredMethod(method: string, require?: Readonly<Record<string, string>>): MethodInfo | undefined {
    const dealers = this.registry.offering(method);
    if (!dealers || dealers.size === 0) return undefined;
    if (require !== undefined && !this.registry.offeredWith(method, require)) return undefined;
    return dealers.values().next().value?.methods.get(method);
  }

  /** @internal Free slots of the live, not draining dealers offering `method`. */
  freeSlots(method: string): number {
    let free = 0;
    for (const dealer of this.registry.offering(method) ?? []) if (dealer.hasFreeSlot) free += dealer.maxConcurrent - dealer.load;
    return free;
  }

  /**
   * @internal Takes a token of `method`'s rate limit for a task's attempt (the attempt's call then
   * takes none): 0 when taken (or the method has no limit), else the ms until the next token.
   */
  takeRateToken(method: string): number {
    return this.rates.active ? this.rates.take(method) : 0;
  }

  /** @internal Runs a call owned by `sink` (a task's attempt); `abandonOwned` gives up on it. */
  runOwned(request: OwnedCallRequest, sink: ReplySink): Call {
    return this.inbound.owned(sink, request);
  }

  /** @internal See runOwned. */
  abandonOwned(call: Call): void {
    this.inbound.abandonOwned(call);
  }

  /** @internal See runOwned and Inbound.terminateOwned. */
  terminateOwned(call: Call, graceMs: number): void {
    this.inbound.terminateOwned(call, graceMs, this.config.heartbeatTimeoutMs);
  }

  /** @internal The rate-limited methods: rate, waiting now, times held (metrics). */
  rateLimitStats(): RateLimitStat[] {
    return this.rates.stats();
  }

  /** @internal Methods with calls waiting: how many, and performance.now() of the oldest's arrival (metrics). */
  waitingCalls(): Map<string, { count: number; oldestReceivedAt: number }> {
    return this.infoBuilder.waiting();
  }

  /**
   * An operator's drain: dealer `dealerId` gets no new calls from now on and is told (DRAIN) to
   * finish what it runs and leave. Returns false for an id no registered dealer has.
   */
  drainDealer(dealerId: string): boolean {
    return this.inbound.drainDealer(dealerId);
  }

  /** The data behind INFO topics; also handy in-process. */
  info(topic: string): unknown {
    return this.infoBuilder.topic(topic);
  }
}

/**
 * The CURVE options of the router's socket: none without a secret key. With key lists for both
 * roles, keys on neither are refused in the handshake (ERROR 400, as libzmq's ZAP does); with a
 * role left open, every client key is admitted and the roles are checked at HELLO.
 */
function curveServerOptions(config: RouterConfig): {
  curveServer?: true;
  curveSecretKey?: string;
  curveAuthenticator?: CurveAuthenticator;
} {
  if (config.curveSecretKey === undefined) return {};
  const { dealers, clients } = config.curveRoles;
  if (dealers === undefined || clients === undefined) return { curveServer: true, curveSecretKey: config.curveSecretKey };
  const admitted = new Set([...dealers, ...clients]);
  return {
    curveServer: true,
    curveSecretKey: config.curveSecretKey,
    curveAuthenticator: ({ publicKey }) =>
      admitted.has(publicKey)
        ? { allow: true, userId: publicKey }
        : { allow: false, reason: `key ${publicKey} is in neither curveAllow list` },
  };
}
