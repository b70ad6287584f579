/**
 * ServiceRouter: the broker. Dealers register their methods; client requests wait in one queue
 * per method and go, in arrival order, to a dealer with a free slot. The router never parses
 * payloads: it rewrites ids in headers and forwards argument and result frames untouched.
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import * as v from "valibot";
import {
  AuthError,
  AuthFailure,
  CancelledError,
  DealerLostError,
  encodeMessage,
  errorToWire,
  NoSuchMethodError,
  ProtocolError,
  ProtocolFailure,
  QueueFullError,
  ShuttingDownError,
  TimeoutError,
  ValidationError,
  type DealerHelloHeader,
  type MethodInfo,
  type RouterInbound,
  type RouterMessage,
  type VoidRailError,
  type WireError,
  decodeMessage,
  encodeJsonOrThrow,
  PROTOCOL_VERSION,
  RouterMode,
} from "../protocol/index.ts";
import { connectionTimings } from "./connection-timings.ts";
import { HelloDeadline } from "./hello-deadline.ts";
import {
  ApiKeyOption,
  booleanFromEnv,
  checkOptions,
  consumeMessages,
  EndpointOption,
  listFromEnv,
  SecondsOption,
  secondsFromEnv,
} from "../options.ts";
import { type Deadline, Deadlines } from "../deadlines.ts";
import { Queue } from "../zmtp/queue.ts";
import { Router } from "../zmtp/router.ts";
import { SEND_DONE } from "../zmtp/socket.ts";
import { KeyChecker } from "./auth.ts";
import { type DispatchStrategy, fifoStrategy, loadBalanceStrategy } from "./dispatch.ts";
import { createLogger, type Logger } from "../log.ts";

export { RouterMode };

/** Options of a ServiceRouter. Times are in seconds, as in the Python seed. */
export interface ServiceRouterOptions {
  /** Endpoint to bind, e.g. "tcp://127.0.0.1:5555", "tcp://0.0.0.0:5555", "ipc:///tmp/vr.sock". Default "tcp://127.0.0.1:5555". */
  address?: string;
  /** "fifo" (default: one request per dealer at a time, strictly in arrival order) or "load_balance". */
  routerMode?: RouterMode;
  /** A peer silent this long is gone; its work is re-dispatched. Default 30 s (env VOIDRAIL_HEARTBEAT_TIMEOUT). */
  heartbeatTimeout?: number;
  /** Require API keys. Default: true when any key list is non-empty (env VOIDRAIL_REQUIRE_AUTH). */
  requireAuth?: boolean;
  /** Keys dealers must present (env VOIDRAIL_DEALER_API_KEYS, comma-separated). */
  dealerApiKeys?: string[];
  /** Keys clients must present (env VOIDRAIL_CLIENT_API_KEYS, comma-separated). */
  clientApiKeys?: string[];
  /** Most requests waiting per method before QueueFullError. Default 10000. */
  maxQueueLength?: number;
  /** Per-method overrides of maxQueueLength, keyed "Service.method". */
  queueLimits?: Record<string, number>;
  /** How many times a request whose dealer was lost (before any reply) is dispatched again. Default 1. */
  maxRedispatch?: number;
  /** Default call timeout applied when a request carries none, in seconds; 0 = none. Default 0. */
  defaultTimeout?: number;
  /** Seconds a stopping router lets running requests finish. Default 5. */
  shutdownGrace?: number;
  /** Largest message accepted from any peer, in bytes; a bigger one closes that connection. Default 256 MiB. */
  maxMessageSize?: number;
  /** Logger (consola-compatible). Default: consola tagged "router". */
  logger?: Logger;
}

const OptionsSchema = v.object({
  address: v.optional(EndpointOption),
  routerMode: v.optional(v.picklist(["fifo", "load_balance"])),
  heartbeatTimeout: v.optional(v.pipe(v.number(), v.minValue(0.05), v.maxValue(2_000_000))),
  requireAuth: v.optional(v.boolean()),
  dealerApiKeys: v.optional(v.array(ApiKeyOption)),
  clientApiKeys: v.optional(v.array(ApiKeyOption)),
  maxQueueLength: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  queueLimits: v.optional(v.record(v.string(), v.pipe(v.number(), v.integer(), v.minValue(0)))),
  maxRedispatch: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100))),
  defaultTimeout: v.optional(SecondsOption),
  shutdownGrace: v.optional(SecondsOption),
  maxMessageSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1024))),
  logger: v.optional(v.any()),
});

interface ClientPeer {
  routingId: Buffer;
  authenticated: boolean;
  /** Requests of this connection without a terminal reply yet, by client id. */
  outstanding: Map<number, Job>;
}

interface DealerPeer {
  id: string;
  routingId: Buffer;
  service: string;
  instanceId?: string;
  methods: Map<string, MethodInfo>;
  maxConcurrent: number;
  /** Jobs running on it by router id, including orphans awaiting their terminal message. */
  inFlight: Map<number, Job>;
  draining: boolean;
  dispatched: number;
  succeeded: number;
  failed: number;
  lastSeen: number;
  lastDispatch: number;
  /** Secret its heartbeat connection sends in BEAT (see onBeat). */
  beatToken: string;
  get load(): number;
}

/** received: being checked, not yet in a queue or on a dealer (a refusal then touches no queue). */
type JobState = "received" | "queued" | "running" | "done";

interface Job {
  /** Arrival order across all methods: FIFO is by this number. */
  seq: number;
  client: ClientPeer | null;
  clientId: number;
  method: string;
  stream: boolean;
  args: Buffer;
  credit: number | undefined;
  waitForDealer: boolean;
  redispatchesLeft: number;
  deadline: number | undefined;
  timer: Deadline | undefined;
  state: JobState;
  routerId: number;
  dealer: DealerPeer | null;
  /** A RESULT or CHUNK reached the client: the job can no longer be run again. */
  forwarded: boolean;
}

type Peer = { role: "client"; client: ClientPeer } | { role: "dealer"; dealer: DealerPeer };

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
  private readonly options: Required<Omit<ServiceRouterOptions, "logger" | "requireAuth" | "routerMode">>;
  private readonly strategy: DispatchStrategy;
  private readonly dealerKeys: KeyChecker;
  private readonly clientKeys: KeyChecker;
  readonly requireDealerAuth: boolean;
  readonly requireClientAuth: boolean;
  private readonly log: Logger;
  private socket: Router | null = null;
  /** Set while running with client keys required: each new connection must HELLO in time. */
  private hello: HelloDeadline | null = null;
  private boundAddress = "";
  private startedAt = 0;
  private stopping = false;

  private readonly peers = new Map<string, Peer>();
  private readonly dealersByBeatToken = new Map<string, DealerPeer>();
  private readonly dealersByMethod = new Map<string, Set<DealerPeer>>();
  private readonly queues = new Map<string, Queue<Job>>();
  private readonly queuedCount = new Map<string, number>();
  private readonly running = new Map<number, Job>();
  private readonly deadlines = new Deadlines();
  private nextSeq = 1;
  /**
   * Router ids continue from the clock (ms × 1024), not from 1: a dealer may still answer a
   * request of a previous router on this address after reconnecting, and that late answer must not
   * match a request of this one. Ids stay below 2^53 until the year 2248 and never catch up with a
   * later restart's start unless a router dispatches over a million requests a second for its life.
   */
  private nextRouterId = Date.now() * 1024;
  private nextDealerNumber = 1;
  private dispatchCounter = 0;
  private totalRequests = 0;
  private totalResponses = 0;

  constructor(options: ServiceRouterOptions = {}) {
    const env = process.env;
    checkOptions(OptionsSchema, options, "ServiceRouter");
    const dealerApiKeys = options.dealerApiKeys ?? listFromEnv(env.VOIDRAIL_DEALER_API_KEYS);
    const clientApiKeys = options.clientApiKeys ?? listFromEnv(env.VOIDRAIL_CLIENT_API_KEYS);
    const requireAuth = options.requireAuth ?? booleanFromEnv(env.VOIDRAIL_REQUIRE_AUTH) ?? dealerApiKeys.length + clientApiKeys.length > 0;
    if (requireAuth && dealerApiKeys.length + clientApiKeys.length === 0) {
      throw new ValidationError("requireAuth is on but no dealer or client API keys are configured");
    }
    this.mode = options.routerMode ?? RouterMode.FIFO;
    this.strategy = this.mode === RouterMode.FIFO ? fifoStrategy : loadBalanceStrategy;
    this.options = {
      address: options.address ?? "tcp://127.0.0.1:5555",
      heartbeatTimeout: options.heartbeatTimeout ?? secondsFromEnv(env.VOIDRAIL_HEARTBEAT_TIMEOUT) ?? 30,
      dealerApiKeys,
      clientApiKeys,
      maxQueueLength: options.maxQueueLength ?? 10_000,
      queueLimits: options.queueLimits ?? {},
      maxRedispatch: options.maxRedispatch ?? 1,
      defaultTimeout: options.defaultTimeout ?? 0,
      shutdownGrace: options.shutdownGrace ?? 5,
      maxMessageSize: options.maxMessageSize ?? 256 * 1024 * 1024,
    };
    this.dealerKeys = new KeyChecker(dealerApiKeys);
    this.clientKeys = new KeyChecker(clientApiKeys);
    this.requireDealerAuth = requireAuth && dealerApiKeys.length > 0;
    this.requireClientAuth = requireAuth && clientApiKeys.length > 0;
    this.log = options.logger ?? createLogger("router");
  }

  /** The bound endpoint (with the real port when port 0 was asked for). */
  get address(): string {
    return this.boundAddress || this.options.address;
  }

  private get heartbeatTimeoutMs(): number {
    return connectionTimings(this.options.heartbeatTimeout).heartbeatTimeoutMs;
  }

  private get heartbeatIntervalMs(): number {
    return connectionTimings(this.options.heartbeatTimeout).heartbeatIntervalMs;
  }

  async start(): Promise<void> {
    if (this.socket) return;
    const socket = new Router({
      heartbeatInterval: this.heartbeatIntervalMs,
      heartbeatTimeout: this.heartbeatTimeoutMs,
      handshakeInterval: connectionTimings(this.options.heartbeatTimeout).handshakeIntervalMs,
      // Replies to a peer that left are dropped silently: its state is already gone.
      mandatory: false,
      // Without a bound, one peer announcing a huge frame would make the router allocate it.
      maxMessageSize: this.options.maxMessageSize,
      sendHighWaterMark: 10_000,
      receiveHighWaterMark: 10_000,
      logger: { warn: (message) => this.log.warn(message) },
    });
    socket.events.on("disconnect", ({ routingId, error }) => this.onPeerGone(routingId, error?.message));
    // Without client keys a connection may stay silent at the VoidRail level (HELLO is optional
    // then); with them, one that never authenticates must not hold its socket forever.
    if (this.requireClientAuth) {
      const hello = new HelloDeadline(socket, connectionTimings(this.options.heartbeatTimeout).helloTimeoutMs);
      socket.events.on("handshake", ({ routingId }) => hello.start(routingId));
      this.hello = hello;
    }
    await socket.bind(this.options.address);
    this.socket = socket;
    this.boundAddress = socket.lastEndpoint ?? this.options.address;
    this.startedAt = Date.now();
    this.stopping = false;
    this.log.info(`router listening on ${this.boundAddress} (mode ${this.mode})`);
    void consumeMessages(socket, (frames) => this.onMessage(frames), this.log, "router");
  }

  /**
   * Stops accepting work, fails queued requests with SHUTTING_DOWN, gives running ones
   * `shutdownGrace` seconds, fails the rest, then closes the socket.
   */
  async stop(): Promise<void> {
    const socket = this.socket;
    if (!socket || this.stopping) return;
    this.stopping = true;
    for (const queue of this.queues.values()) {
      for (const job of queue.drain()) if (job.state === "queued") this.finish(job, new ShuttingDownError("the router is stopping"));
    }
    this.queuedCount.clear();
    if (this.running.size > 0) {
      this.log.info(`router stopping: waiting up to ${this.options.shutdownGrace} s for ${this.running.size} call(s) in flight`);
    }
    const deadline = Date.now() + this.options.shutdownGrace * 1000;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const job of [...this.running.values()]) this.finish(job, new ShuttingDownError("the router stopped before the request finished"));
    // Let the failure replies reach the transport before the sockets close.
    await new Promise((r) => setImmediate(r));
    this.peers.clear();
    this.deadlines.clear();
    this.hello?.clear();
    this.hello = null;
    socket.close();
    this.socket = null;
    this.dealersByMethod.clear();
    this.dealersByBeatToken.clear();
    this.running.clear();
    this.log.info("router stopped");
  }

  /** `await using router = new ServiceRouter(...)` stops it when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private onMessage(frames: Buffer[]): void {
    const routingId = frames[0];
    const key = this.socket?.routingKey(routingId) ?? routingId.toString("latin1");
    const peer = this.peers.get(key);
    if (peer?.role === "dealer") peer.dealer.lastSeen = Date.now();
    const message = decodeMessage(frames.slice(1), "router");
    if (!message.ok) {
      this.log.warn(`bad message from ${describePeer(routingId, peer)}: ${message.error.message}`);
      this.reply(routingId, "ERROR", {
        ...(message.kind === "REQUEST" || message.kind === "INFO" ? idField(message.id) : {}),
        ...errorToWire(message.error),
      });
      return;
    }
    switch (message.kind) {
      case "HELLO":
        return this.onHello(routingId, key, peer, message.header);
      case "BEAT":
        return this.onBeat(key, message.header.token);
      case "REQUEST":
      case "INFO":
      case "CANCEL":
      case "CREDIT": {
        const client = this.clientFor(routingId, key, peer, message.kind, "id" in message.header ? message.header.id : undefined);
        if (!client) return;
        if (message.kind === "REQUEST") return this.onRequest(client, message.header, message.payload as Buffer);
        if (message.kind === "INFO") return this.onInfo(client, message.header.id, message.header.topic);
        if (message.kind === "CANCEL") return this.onCancel(client, message.header.id);
        return this.onCredit(client, message.header.id, message.header.n);
      }
      default: {
        if (peer?.role !== "dealer") {
          this.protocolError(
            routingId,
            ProtocolFailure.NOT_REGISTERED,
            `${message.kind} from a connection that is not a registered dealer`,
          );
          return;
        }
        return this.onDealerMessage(peer.dealer, message);
      }
    }
  }

  // ---- connections and registration ----

  private onHello(routingId: Buffer, key: string, peer: Peer | undefined, hello: RouterInbound["HELLO"]): void {
    // A client may say HELLO again (a HELLO queued during a reconnect arrives twice): it is welcomed again.
    if (peer?.role === "dealer") {
      this.protocolError(routingId, ProtocolFailure.ALREADY_HELLO, "HELLO on a connection that already registered as a dealer");
      return;
    }
    if (this.stopping) {
      this.reply(routingId, "ERROR", errorToWire(new ShuttingDownError("the router is stopping")));
      return;
    }
    const welcome = {
      version: Math.min(hello.version, PROTOCOL_VERSION),
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.heartbeatTimeoutMs,
    };
    if (hello.role === "client") {
      if (this.requireClientAuth && !this.clientKeys.matches(hello.apiKey)) {
        this.log.warn(`client ${routingId.toString("hex")} failed authentication`);
        this.reply(routingId, "ERROR", errorToWire(authError(AuthFailure.BAD_KEY)));
        return;
      }
      const client = peer?.role === "client" ? peer.client : { routingId, authenticated: false, outstanding: new Map() };
      client.authenticated = true;
      this.hello?.met(key);
      this.peers.set(key, { role: "client", client });
      this.reply(routingId, "WELCOME", { role: "client", ...welcome });
      return;
    }
    if (this.requireDealerAuth && !this.dealerKeys.matches(hello.apiKey)) {
      this.log.warn(`dealer ${hello.service} (${routingId.toString("hex")}) failed authentication`);
      this.reply(routingId, "ERROR", errorToWire(authError(AuthFailure.BAD_KEY)));
      return;
    }
    if (peer?.role === "client" && peer.client.outstanding.size > 0) {
      this.protocolError(
        routingId,
        ProtocolFailure.WRONG_ROLE,
        "a connection with client requests outstanding cannot register as a dealer",
      );
      return;
    }
    const dealer = this.registerDealer(routingId, hello);
    this.hello?.met(key);
    this.peers.set(key, { role: "dealer", dealer });
    this.reply(routingId, "WELCOME", { role: "dealer", dealerId: dealer.id, beatToken: dealer.beatToken, ...welcome });
    this.log.info(
      `dealer ${dealer.id} registered${dealer.instanceId ? ` (${dealer.instanceId})` : ""}: ${[...dealer.methods.keys()].join(", ")}`,
    );
    this.dispatchTo(dealer);
  }

  private registerDealer(routingId: Buffer, hello: DealerHelloHeader): DealerPeer {
    const dealer: DealerPeer = {
      id: `${hello.service}-${this.nextDealerNumber++}`,
      routingId,
      service: hello.service,
      instanceId: hello.instanceId,
      methods: new Map(Object.entries(hello.methods)),
      maxConcurrent: hello.maxConcurrent ?? this.strategy.defaultMaxConcurrent,
      inFlight: new Map(),
      draining: false,
      dispatched: 0,
      succeeded: 0,
      failed: 0,
      lastSeen: Date.now(),
      lastDispatch: 0,
      beatToken: randomBytes(16).toString("base64url"),
      get load() {
        return this.inFlight.size;
      },
    };
    for (const method of dealer.methods.keys()) {
      let set = this.dealersByMethod.get(method);
      if (!set) this.dealersByMethod.set(method, (set = new Set()));
      set.add(dealer);
    }
    this.dealersByBeatToken.set(dealer.beatToken, dealer);
    return dealer;
  }

  /** The client state for a client-kind message, or undefined after answering why not. */
  private clientFor(routingId: Buffer, key: string, peer: Peer | undefined, kind: string, id: number | undefined): ClientPeer | undefined {
    if (peer?.role === "dealer") {
      this.protocolError(routingId, ProtocolFailure.WRONG_ROLE, `${kind} from a registered dealer`);
      return undefined;
    }
    if (this.requireClientAuth && !(peer?.role === "client" && peer.client.authenticated)) {
      this.log.warn(`refused ${kind} from ${describePeer(routingId, peer)}: not authenticated`);
      const answerId = kind === "REQUEST" || kind === "INFO" ? idField(id) : {};
      this.reply(routingId, "ERROR", { ...answerId, ...errorToWire(authError(AuthFailure.NOT_AUTHENTICATED)) });
      return undefined;
    }
    if (peer?.role === "client") return peer.client;
    const client: ClientPeer = { routingId, authenticated: false, outstanding: new Map() };
    this.peers.set(key, { role: "client", client });
    return client;
  }

  private onPeerGone(routingId: Buffer, why: string | undefined): void {
    const key = routingId.toString("latin1");
    this.hello?.met(key);
    const peer = this.peers.get(key);
    if (!peer) return;
    this.peers.delete(key);
    if (peer.role === "client") {
      for (const job of peer.client.outstanding.values()) this.abandon(job, "client disconnected");
      peer.client.outstanding.clear();
      return;
    }
    this.removeDealer(peer.dealer, why ?? "disconnected");
  }

  /**
   * A dealer's heartbeat connection vouches for it: its own connection counts as heard from, so
   * a dealer whose event loop is busy in a long synchronous method is not declared lost. The
   * token (128 random bits, given only in that dealer's WELCOME) is the authority; a BEAT needs
   * no HELLO. Unknown tokens (a registration that ended) are ignored: a BEAT is never answered.
   */
  private onBeat(key: string, token: string): void {
    const dealer = this.dealersByBeatToken.get(token);
    if (!dealer) return;
    this.hello?.met(key);
    dealer.lastSeen = Date.now();
    this.socket?.noteAlive(dealer.routingId);
  }

  private removeDealer(dealer: DealerPeer, why: string): void {
    this.dealersByBeatToken.delete(dealer.beatToken);
    for (const method of dealer.methods.keys()) {
      const set = this.dealersByMethod.get(method);
      set?.delete(dealer);
      if (set?.size === 0) {
        this.dealersByMethod.delete(method);
        this.failWaitingWithoutDealer(method);
      }
    }
    const lost = [...dealer.inFlight.values()];
    dealer.inFlight.clear();
    const note = `dealer ${dealer.id} left (${why}) with ${lost.length} request(s) in flight`;
    if (lost.length > 0) this.log.warn(note);
    else this.log.info(note);
    // A dealer that drained and said BYE finished everything it started and refused the rest
    // (NOT_STARTED): what it still holds never ran, so it runs elsewhere without using a redispatch.
    const leftCleanly = dealer.draining && why === "unregistered";
    for (const job of lost) {
      this.running.delete(job.routerId);
      job.dealer = null;
      if (job.client === null) {
        job.state = "done";
        continue;
      }
      const neverStarted = leftCleanly && !job.forwarded;
      // Re-queue only if someone can still run it; otherwise fail now rather than at its timeout.
      const someoneCanRunIt = job.waitForDealer || (this.dealersByMethod.get(job.method)?.size ?? 0) > 0;
      if (!job.forwarded && (neverStarted || job.redispatchesLeft > 0) && !this.stopping && someoneCanRunIt) {
        if (!neverStarted) job.redispatchesLeft--;
        this.log.info(`re-dispatching ${job.method} (client id ${job.clientId}) after losing ${dealer.id}`);
        this.enqueue(job, true);
      } else if (neverStarted && !this.stopping) {
        this.finish(
          job,
          new NoSuchMethodError(`no service offers ${job.method} any more: ${dealer.id} drained and left without starting the call`, {
            data: { method: job.method, dealerId: dealer.id },
          }),
        );
      } else {
        this.finish(
          job,
          new DealerLostError(`dealer ${dealer.id} was lost while running ${job.method}`, { data: { dealerId: dealer.id } }),
        );
      }
    }
    for (const method of dealer.methods.keys()) this.dispatchMethod(method);
  }

  private failWaitingWithoutDealer(method: string): void {
    const queue = this.queues.get(method);
    if (!queue) return;
    const keep = new Queue<Job>();
    for (const job of queue.drain()) {
      if (job.state !== "queued") continue;
      // finish() takes the job off the method's count.
      if (job.waitForDealer) keep.push(job);
      else this.finish(job, noSuchMethod(method));
    }
    this.queues.set(method, keep);
  }

  // ---- requests ----

  private onRequest(client: ClientPeer, header: RouterInbound["REQUEST"], args: Buffer): void {
    if (client.outstanding.has(header.id)) {
      this.protocolError(client.routingId, ProtocolFailure.DUPLICATE_ID, `request id ${header.id} is still outstanding`, { id: header.id });
      return;
    }
    this.totalRequests++;
    const method = header.method;
    const timeoutMs = header.timeoutMs ?? (this.options.defaultTimeout > 0 ? this.options.defaultTimeout * 1000 : undefined);
    const job: Job = {
      seq: this.nextSeq++,
      client,
      clientId: header.id,
      method,
      stream: header.stream ?? false,
      args,
      credit: header.credit,
      waitForDealer: header.waitForDealer ?? false,
      redispatchesLeft: this.options.maxRedispatch,
      deadline: timeoutMs !== undefined ? Date.now() + timeoutMs : undefined,
      timer: undefined,
      state: "received",
      routerId: 0,
      dealer: null,
      forwarded: false,
    };
    client.outstanding.set(header.id, job);
    if (this.stopping) return this.finish(job, new ShuttingDownError("the router is stopping"));
    const dealers = this.dealersByMethod.get(method);
    if (!dealers || dealers.size === 0) {
      if (!job.waitForDealer) return this.finish(job, noSuchMethod(method));
    } else {
      const info = dealers.values().next().value!.methods.get(method)!;
      if (info.stream !== job.stream) {
        return this.finish(
          job,
          new ValidationError(
            `${method} is ${info.stream ? "a streaming" : "a unary"} method: call it with ${info.stream ? "stream()" : "invoke()"}`,
            { data: { path: "stream" } },
          ),
        );
      }
    }
    if (timeoutMs !== undefined) {
      job.timer = this.deadlines.add(timeoutMs, () => this.onTimeout(job, timeoutMs));
    }
    const limit = this.options.queueLimits[method] ?? this.options.maxQueueLength;
    const free = this.freeDealers(method);
    if (free.length > 0 && (this.queuedCount.get(method) ?? 0) === 0) {
      this.dispatch(job, this.strategy.pick(free));
      return;
    }
    if ((this.queuedCount.get(method) ?? 0) >= limit) {
      return this.finish(
        job,
        new QueueFullError(`the queue of ${method} is full (${limit} waiting)`, { data: { method, queueLength: limit } }),
      );
    }
    this.enqueue(job, false);
    this.dispatchMethod(method);
  }

  private enqueue(job: Job, atHead: boolean): void {
    job.state = "queued";
    let queue = this.queues.get(job.method);
    if (!queue) this.queues.set(job.method, (queue = new Queue()));
    if (atHead) {
      // A re-dispatched job keeps its place in line: it arrived before everything waiting now.
      const rest = queue.drain();
      queue.push(job);
      for (const other of rest) queue.push(other);
    } else {
      queue.push(job);
    }
    this.queuedCount.set(job.method, (this.queuedCount.get(job.method) ?? 0) + 1);
    if (atHead) this.dispatchMethod(job.method);
  }

  private decrementQueued(method: string): void {
    const count = (this.queuedCount.get(method) ?? 1) - 1;
    if (count <= 0) this.queuedCount.delete(method);
    else this.queuedCount.set(method, count);
  }

  private freeDealers(method: string): DealerPeer[] {
    const free: DealerPeer[] = [];
    for (const dealer of this.dealersByMethod.get(method) ?? []) {
      if (!dealer.draining && dealer.inFlight.size < dealer.maxConcurrent) free.push(dealer);
    }
    return free;
  }

  /** Serves a method's queue while some dealer offering it has a free slot. */
  private dispatchMethod(method: string): void {
    const queue = this.queues.get(method);
    if (!queue) return;
    while (queue.length > 0) {
      const head = queue.peek()!;
      if (head.state !== "queued") {
        queue.shift();
        continue;
      }
      const free = this.freeDealers(method);
      if (free.length === 0) return;
      queue.shift();
      this.decrementQueued(method);
      this.dispatch(head, this.strategy.pick(free));
    }
  }

  /** A dealer has a free slot: give it the oldest request it can run, across its methods. */
  private dispatchTo(dealer: DealerPeer): void {
    while (!dealer.draining && dealer.inFlight.size < dealer.maxConcurrent) {
      let oldest: Job | undefined;
      for (const method of dealer.methods.keys()) {
        const queue = this.queues.get(method);
        if (!queue) continue;
        while (queue.length > 0 && queue.peek()!.state !== "queued") queue.shift();
        const head = queue.peek();
        if (head && (!oldest || head.seq < oldest.seq)) oldest = head;
      }
      if (!oldest) return;
      this.queues.get(oldest.method)!.shift();
      this.decrementQueued(oldest.method);
      this.dispatch(oldest, dealer);
    }
  }

  private dispatch(job: Job, dealer: DealerPeer): void {
    job.state = "running";
    job.dealer = dealer;
    job.routerId = this.nextRouterId++;
    dealer.inFlight.set(job.routerId, job);
    dealer.dispatched++;
    dealer.lastDispatch = ++this.dispatchCounter;
    this.running.set(job.routerId, job);
    const header: { id: number; method: string; stream?: boolean; credit?: number; deadlineMs?: number } = {
      id: job.routerId,
      method: job.method,
    };
    if (job.stream) header.stream = true;
    if (job.credit !== undefined) header.credit = job.credit;
    if (job.deadline !== undefined) header.deadlineMs = Math.max(1, job.deadline - Date.now());
    this.send(dealer.routingId, encodeMessage("REQUEST", header, job.args));
  }

  private onInfo(client: ClientPeer, id: number, topic: string): void {
    if (client.outstanding.has(id)) {
      this.protocolError(client.routingId, ProtocolFailure.DUPLICATE_ID, `request id ${id} is still outstanding`, { id });
      return;
    }
    const value = this.info(topic);
    this.reply(client.routingId, "RESULT", { id }, Buffer.from(encodeJsonOrThrow(value)));
  }

  private onCancel(client: ClientPeer, id: number): void {
    const job = client.outstanding.get(id);
    if (!job) return;
    this.finish(job, new CancelledError("cancelled by the client"));
  }

  private onCredit(client: ClientPeer, id: number, n: number): void {
    const job = client.outstanding.get(id);
    if (!job?.stream || job.credit === undefined) return;
    if (job.state === "queued") {
      job.credit = Math.min(2_147_483_647, job.credit + n);
      return;
    }
    if (job.state === "running" && job.dealer) this.send(job.dealer.routingId, encodeMessage("CREDIT", { id: job.routerId, n }));
  }

  private onTimeout(job: Job, timeoutMs: number): void {
    job.timer = undefined;
    if (job.state === "done" || job.client === null) return;
    this.finish(job, new TimeoutError(`${job.method} did not finish within ${timeoutMs} ms`, { data: { timeoutMs } }));
  }

  // ---- replies from dealers ----

  private onDealerMessage(dealer: DealerPeer, message: RouterMessage): void {
    switch (message.kind) {
      case "DRAIN":
        dealer.draining = true;
        this.log.info(`dealer ${dealer.id} is draining`);
        // Its queued-for work may now belong to others.
        for (const method of dealer.methods.keys()) this.dispatchMethod(method);
        return;
      case "BYE": {
        const key = dealer.routingId.toString("latin1");
        this.peers.delete(key);
        this.removeDealer(dealer, "unregistered");
        return;
      }
      case "RESULT":
      case "CHUNK":
      case "END":
      case "ERROR": {
        const header = message.header as { id?: number };
        if (header.id === undefined) {
          this.log.warn(`dealer ${dealer.id} reported: ${(message.header as WireError).message}`);
          return;
        }
        const job = dealer.inFlight.get(header.id);
        if (!job) {
          // Not a request this dealer holds: a reply sent before a reconnection, or a spoof. (A
          // late reply after a cancel is still held: the slot stays taken until it comes.)
          this.log.warn(`dropped a ${message.kind} from dealer ${dealer.id} for request ${header.id}, which it does not hold`);
          return;
        }
        return this.onDealerReply(dealer, job, message);
      }
    }
  }

  private onDealerReply(dealer: DealerPeer, job: Job, message: RouterMessage): void {
    const client = job.client;
    if (message.kind === "ERROR" && isNotStarted(message.header) && !job.forwarded && client !== null && !this.stopping) {
      // A draining dealer refused a request that crossed its DRAIN: it never ran, so it waits for
      // another dealer in its old place in line, without using one of its redispatches.
      dealer.inFlight.delete(job.routerId);
      this.running.delete(job.routerId);
      job.dealer = null;
      this.log.info(`dealer ${dealer.id} is draining and did not start ${job.method}; it goes to another dealer`);
      this.enqueue(job, true);
      return;
    }
    if (message.kind === "CHUNK") {
      if (client === null) return;
      if (!job.stream) {
        this.failRunning(dealer, job, ProtocolFailure.UNEXPECTED_KIND, "CHUNK for a unary request");
        return;
      }
      job.forwarded = true;
      this.send(
        client.routingId,
        encodeMessage("CHUNK", { id: job.clientId, seq: (message.header as { seq: number }).seq }, message.payload as Buffer),
      );
      return;
    }
    // Terminal: the slot is free whatever the client's state.
    dealer.inFlight.delete(job.routerId);
    this.running.delete(job.routerId);
    if (message.kind === "ERROR") dealer.failed++;
    else dealer.succeeded++;
    if (client !== null && job.state !== "done") {
      job.state = "done";
      this.clearJob(job);
      client.outstanding.delete(job.clientId);
      this.totalResponses++;
      if (message.kind === "RESULT") this.send(client.routingId, encodeMessage("RESULT", { id: job.clientId }, message.payload as Buffer));
      else if (message.kind === "END")
        this.send(client.routingId, encodeMessage("END", { id: job.clientId, count: (message.header as { count: number }).count }));
      else this.send(client.routingId, encodeMessage("ERROR", { ...(message.header as WireError), id: job.clientId }));
    } else {
      job.state = "done";
    }
    this.dispatchTo(dealer);
  }

  private failRunning(dealer: DealerPeer, job: Job, reason: string, text: string): void {
    this.log.warn(`dealer ${dealer.id} broke the protocol: ${text}; the request fails`);
    this.send(dealer.routingId, encodeMessage("ERROR", errorToWire(new ProtocolError(text, { data: { reason } }))));
    this.finish(job, new ProtocolError(`dealer ${dealer.id}: ${text}`, { data: { reason } }));
  }

  // ---- endings ----

  /**
   * Ends a request for its client with `error` (or nothing, when the client is gone). A running
   * request is cancelled on its dealer, which keeps the slot until it sends its terminal message.
   */
  private finish(job: Job, error: VoidRailError): void {
    if (job.state === "done" && job.client === null) return;
    const client = job.client;
    if (job.state === "queued") {
      job.state = "done";
      const queue = this.queues.get(job.method);
      // Lazily removed from its queue: dispatch skips jobs that are no longer queued.
      if (queue) this.decrementQueued(job.method);
    } else if (job.state === "running" && job.dealer) {
      this.send(job.dealer.routingId, encodeMessage("CANCEL", { id: job.routerId }));
      // Stays in the dealer's inFlight (its slot) until the dealer's terminal message.
    }
    if (job.state !== "running") job.state = "done";
    this.clearJob(job);
    if (client !== null) {
      job.client = null;
      client.outstanding.delete(job.clientId);
      this.totalResponses++;
      this.send(client.routingId, encodeMessage("ERROR", { id: job.clientId, ...errorToWire(error) }));
    }
  }

  /** The client left: forget it, cancel running work, drop queued work. */
  private abandon(job: Job, why: string): void {
    if (job.state === "queued") {
      job.state = "done";
      this.decrementQueued(job.method);
    } else if (job.state === "running" && job.dealer) {
      this.send(job.dealer.routingId, encodeMessage("CANCEL", { id: job.routerId }));
    }
    this.clearJob(job);
    job.client = null;
    this.log.debug?.(`dropped ${job.method} (${why})`);
  }

  private clearJob(job: Job): void {
    job.timer?.cancel();
    job.timer = undefined;
  }

  // ---- monitoring ----

  /** The data behind INFO topics; also handy in-process. */
  info(topic: string): unknown {
    switch (topic) {
      case "services":
        return this.servicesInfo();
      case "clusters":
        return this.clustersInfo();
      case "router":
        return this.routerInfo();
      case "queues":
        return this.queuesInfo();
      default:
        return {};
    }
  }

  private servicesInfo(): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    for (const [method, dealers] of this.dealersByMethod) {
      if (dealers.size === 0) continue;
      const info = dealers.values().next().value!.methods.get(method)!;
      result[method] = { ...info, instances: dealers.size };
    }
    return result;
  }

  private clustersInfo(): unknown[] {
    const dealers: DealerPeer[] = [];
    for (const peer of this.peers.values()) if (peer.role === "dealer") dealers.push(peer.dealer);
    dealers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return dealers.map((dealer) => ({
      id: dealer.id,
      service: dealer.service,
      ...(dealer.instanceId ? { instanceId: dealer.instanceId } : {}),
      methods: [...dealer.methods.keys()].sort(),
      state: dealer.draining ? "draining" : "active",
      busy: dealer.load > 0,
      load: dealer.load,
      maxConcurrent: dealer.maxConcurrent,
      counts: { dispatched: dealer.dispatched, succeeded: dealer.succeeded, failed: dealer.failed },
      lastHeartbeat: new Date(dealer.lastSeen).toISOString(),
    }));
  }

  private routerInfo(): Record<string, unknown> {
    let active = 0;
    let busy = 0;
    for (const peer of this.peers.values()) {
      if (peer.role !== "dealer") continue;
      active++;
      if (peer.dealer.load > 0) busy++;
    }
    let queued = 0;
    for (const count of this.queuedCount.values()) queued += count;
    return {
      mode: this.mode,
      address: this.address,
      uptimeSeconds: this.startedAt ? (Date.now() - this.startedAt) / 1000 : 0,
      activeServices: active,
      activeDealers: active,
      busyDealers: busy,
      idleDealers: active - busy,
      totalRequests: this.totalRequests,
      totalResponses: this.totalResponses,
      queuedRequests: queued,
      inProgressRequests: this.running.size,
      requireDealerAuth: this.requireDealerAuth,
      requireClientAuth: this.requireClientAuth,
    };
  }

  private queuesInfo(): Record<string, unknown> {
    const methods = new Set([...this.dealersByMethod.keys(), ...this.queuedCount.keys()]);
    const result: Record<string, unknown> = {};
    for (const method of [...methods].sort()) {
      let available = 0;
      let busy = 0;
      for (const dealer of this.dealersByMethod.get(method) ?? []) {
        if (dealer.draining) continue;
        if (dealer.inFlight.size < dealer.maxConcurrent) available++;
        else busy++;
      }
      result[method] = { queueLength: this.queuedCount.get(method) ?? 0, availableServices: available, busyServices: busy };
    }
    return result;
  }

  // ---- sending ----

  private reply(routingId: Buffer, kind: "WELCOME" | "ERROR" | "RESULT", header: object, payload?: Buffer): void {
    const frames =
      payload === undefined ? encodeMessage(kind as "ERROR", header as never) : encodeMessage(kind as "RESULT", header as never, payload);
    this.send(routingId, frames);
  }

  /** Refuses a message that breaks the conversation rules: one log line, one ERROR without id. */
  private protocolError(routingId: Buffer, reason: string, text: string, data: Record<string, unknown> = {}): void {
    this.log.warn(`refused a message from ${describePeer(routingId, this.peers.get(routingId.toString("latin1")))}: ${text}`);
    this.reply(routingId, "ERROR", errorToWire(new ProtocolError(text, { data: { reason, ...data } })));
  }

  private send(routingId: Buffer, frames: Uint8Array[]): void {
    const socket = this.socket;
    if (!socket) return;
    frames.unshift(routingId);
    const sent = socket.send(frames);
    if (sent !== SEND_DONE) sent.catch((error: Error) => this.log.warn(`could not send to ${routingId.toString("hex")}: ${error.message}`));
  }
}

function authError(reason: string): AuthError {
  const text = reason === AuthFailure.NOT_AUTHENTICATED ? "authenticate with HELLO and an API key first" : "authentication failed";
  return new AuthError(text, { data: { reason } });
}

/** A dealer's ERROR saying it refused the request without running any of it (PROTOCOL.md §4.12). */
function isNotStarted(header: unknown): boolean {
  const data = (header as { data?: unknown }).data;
  return typeof data === "object" && data !== null && (data as { notStarted?: unknown }).notStarted === true;
}

function noSuchMethod(method: string): NoSuchMethodError {
  return new NoSuchMethodError(`no service offers ${method}`, { data: { method } });
}

function idField(id: number | undefined): { id?: number } {
  return id === undefined ? {} : { id };
}

function describePeer(routingId: Buffer, peer: Peer | undefined): string {
  if (peer?.role === "dealer") return `dealer ${peer.dealer.id}`;
  return `${peer?.role ?? "peer"} ${routingId.toString("hex")}`;
}
