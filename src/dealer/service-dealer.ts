/**
 * ServiceDealer: a service instance. Subclass it, mark methods with @serviceMethod, start() it:
 * it connects to the router, registers its methods, takes the requests it is given and hands
 * them to its CallRunner (call-runner.ts), which runs them and replies. This file keeps the
 * lifecycle: HELLO/WELCOME, setup()/teardown(), drain and stop, reconnects, message intake.
 */
import { hostname } from "node:os";
import * as v from "valibot";
import { createLogger, type Logger } from "../util/log.ts";
import {
  HOST_PATTERN,
  AuthError,
  ConnectionError,
  DealerHelloState,
  decodeMessage,
  type DealerWelcomeHeader,
  encodeMessage,
  errorFromWire,
  explainRefusedKey,
  type MethodInfo,
  PROTOCOL_VERSION,
  ProtocolFailure,
  TagsSchema,
  ValidationError,
  type WireError,
  curveRefusal,
  curveSocketOptions,
} from "../protocol/index.ts";
import {
  ApiKeyOption,
  checkOptions,
  clientCurveKeys,
  CurveKeyOption,
  EndpointOption,
  RECONNECT_MAX_INTERVAL_MS,
  SecondsOption,
} from "../options.ts";
import { consumeMessages } from "../util/receive-loop.ts";
import { curvePublicKey, Dealer, ZmtpErrorCode } from "../zmtp/index.ts";
import { loadOtel } from "../util/otel.ts";
import { CallRunner } from "./call-runner.ts";
import { HeartbeatThread } from "./heartbeat-thread.ts";
import { resolveIdentity } from "./identity.ts";
import { type RecycleReason, Recycling } from "./recycling.ts";
import { collectMethods, type MethodDefinition } from "./service-method.ts";

/** This machine's name as HELLO reports it for monitoring; left out when the OS gives one the protocol refuses. */
const HOST: string | undefined = HOST_PATTERN.test(hostname()) ? hostname() : undefined;

/** Options of a ServiceDealer. Times are in seconds, as in the Python seed. */
export interface ServiceDealerOptions {
  /** Router endpoint. Default "tcp://127.0.0.1:5555" (env VOIDRAIL_ROUTER_ADDRESS). */
  routerAddress?: string;
  /** Service name, the part before the dot in "Service.method". Default: the class name. */
  serviceName?: string;
  /** Requests this instance runs at once. Default: the router's mode decides (fifo 1, load_balance 100). */
  maxConcurrent?: number;
  /** How often this dealer checks the router is alive (ZMTP PING), in seconds. Default 0.5. */
  heartbeatInterval?: number;
  /** The router is considered gone after this much silence, in seconds. Default 5. */
  heartbeatTimeout?: number;
  /** API key when the router requires dealer authentication (env VOIDRAIL_API_KEY). */
  apiKey?: string;
  /** Label shown in monitoring. Default "<hostname>:<pid>". */
  instanceId?: string;
  /** start() rejects if not registered within this many seconds; 0 waits forever. Default 30. */
  startTimeout?: number;
  /**
   * Send heartbeats from a worker thread over a second connection, so the router keeps hearing
   * from this dealer while a method blocks the event loop (a long synchronous computation).
   * Bun runs it as a Web Worker, Node (the compiled package) with node:worker_threads. Default true.
   */
  heartbeatThread?: boolean;
  /** The router's CURVE public key (40 Z85 characters): the connection is then encrypted (env VOIDRAIL_CURVE_SERVER_KEY). */
  curveServerKey?: string;
  /** This dealer's CURVE secret key; its public key is its identity at the router (env VOIDRAIL_CURVE_SECRET_KEY). Default: a fresh key pair. */
  curveSecretKey?: string;
  /** Logger (consola-compatible). Default: consola tagged with the service name. */
  logger?: Logger;
  /**
   * Labels that calls can `require` (`{ gpu: "h200", region: "eu" }`), shown by discovery. With
   * `gpus` and no `gpu` tag, the dealer adds `gpu` with the model `nvidia-smi -L` names ("h200").
   */
  tags?: Record<string, string>;
  /**
   * The GPUs this instance uses: "0", "0,1" or ["0", "1"] (indices or GPU UUIDs). The constructor
   * sets CUDA_VISIBLE_DEVICES and VOIDRAIL_GPU to them, so a model loaded in `setup()` (or a
   * library imported after) sees only these; discovery shows them. One dealer per process, then.
   * Default: VOIDRAIL_GPU, which `voidrail dealer --gpus` sets for each instance.
   */
  gpus?: string | string[];
  /** Recycle after this many calls (any outcome). Default: never. */
  maxCalls?: number;
  /** Recycle once the process's RSS passes this many MiB (checked every `memoryCheckInterval`). Default: never. */
  maxMemory?: number;
  /** Seconds between RSS checks for `maxMemory`. Default 1. */
  memoryCheckInterval?: number;
  /**
   * What to do when `maxCalls` or `maxMemory` is passed (called once). Default: log the reason and
   * `stop()` (drain, then leave), so a process manager can start a fresh process. Under
   * `voidrail dealer --max-calls-per-instance/--max-memory-per-instance` the supervisor starts a
   * replacement first and then drains this instance.
   */
  onRecycle?: (reason: RecycleReason) => void;
  /**
   * @internal Awaited in stop() after teardown() and before the dealer unregisters: the
   * supervisor keeps an instance registered (draining, so calls wait instead of failing) until
   * its replacement has registered.
   */
  beforeLeave?: () => Promise<void>;
}

// Declared beside Recycling; exported here too, where src/index.ts and the CLI take it from.
export type { RecycleReason } from "./recycling.ts";

const OptionsSchema = v.object({
  routerAddress: v.optional(EndpointOption),
  serviceName: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "serviceName must be an identifier"))),
  maxConcurrent: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65_535))),
  heartbeatInterval: v.optional(SecondsOption),
  heartbeatTimeout: v.optional(SecondsOption),
  apiKey: v.optional(ApiKeyOption),
  instanceId: v.optional(v.pipe(v.string(), v.regex(/^[\x21-\x7e]{1,128}$/, "instanceId must be 1-128 printable ASCII characters"))),
  startTimeout: v.optional(SecondsOption),
  heartbeatThread: v.optional(v.boolean()),
  curveServerKey: v.optional(CurveKeyOption),
  curveSecretKey: v.optional(CurveKeyOption),
  logger: v.optional(v.any()),
  tags: v.optional(TagsSchema),
  gpus: v.optional(v.union([v.string(), v.array(v.string())])),
  maxCalls: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1))),
  maxMemory: v.optional(v.pipe(v.number(), v.gtValue(0))),
  memoryCheckInterval: v.optional(v.pipe(v.number(), v.gtValue(0), v.maxValue(86_400))),
  onRecycle: v.optional(v.function()),
  beforeLeave: v.optional(v.function()),
});

/**
 * - connecting: no WELCOME yet (or the connection was lost)
 * - setup: welcomed, registered with `state: "setup"`, running `setup()`: the router sends no work
 * - registered: serving
 * - draining: sent DRAIN, finishing what it runs
 */
type DealerState = "stopped" | "connecting" | "setup" | "registered" | "draining";

export class ServiceDealer {
  readonly serviceName: string;
  /** Router-assigned id, known once registered. */
  dealerId: string | undefined;
  readonly #curve: { curveServerKey?: string; curveSecretKey?: string };
  readonly #dealerOptions: Required<
    Pick<ServiceDealerOptions, "routerAddress" | "heartbeatInterval" | "heartbeatTimeout" | "instanceId" | "startTimeout">
  > & {
    maxConcurrent?: number;
    apiKey?: string;
  };
  readonly #log: Logger;
  #socket: Dealer | null = null;
  readonly #heartbeatThread: boolean;
  #heartbeat: HeartbeatThread | undefined;
  #state: DealerState = "stopped";
  #methods = new Map<string, MethodDefinition>();
  /** Runs the requests it is given; the calls running now are its. */
  readonly #calls: CallRunner;
  #registeredWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  #drained!: () => void;
  /**
   * Resolves once an operator drained this dealer at the router (`voidrail client --drain`, the
   * dashboard) and it has stopped; never for a stop() of its own. `voidrail dealer` exits then.
   */
  readonly drainedByRouter: Promise<void> = new Promise((resolve) => (this.#drained = resolve));
  /** When the connection of a registered dealer was lost; cleared once registered again. */
  #lostRouterAt: number | undefined;
  readonly #tags: Record<string, string> | undefined;
  readonly #gpus: string[];
  /** The subclass has its own setup(): it registers in state "setup" and sends READY after. */
  #needsSetup = false;
  #setupDone = false;
  /** The running setup(), while it runs (stop() waits for it). */
  #setupRunning: Promise<unknown> | undefined;
  #tornDown = false;
  readonly #recycling: Recycling;
  readonly #beforeLeave: (() => Promise<void>) | undefined;

  constructor(options: ServiceDealerOptions = {}) {
    checkOptions(OptionsSchema, options, "ServiceDealer");
    this.serviceName = options.serviceName ?? this.constructor.name;
    this.#dealerOptions = {
      routerAddress: options.routerAddress ?? process.env.VOIDRAIL_ROUTER_ADDRESS ?? "tcp://127.0.0.1:5555",
      maxConcurrent: options.maxConcurrent,
      heartbeatInterval: options.heartbeatInterval ?? 0.5,
      heartbeatTimeout: options.heartbeatTimeout ?? 5,
      apiKey: options.apiKey ?? (process.env.VOIDRAIL_API_KEY || undefined),
      instanceId: options.instanceId ?? `${hostname()}:${process.pid}`.replace(/[^\x21-\x7e]/g, "_").slice(0, 128),
      startTimeout: options.startTimeout ?? 30,
    };
    this.#log = options.logger ?? createLogger(this.serviceName);
    this.#heartbeatThread = options.heartbeatThread ?? true;
    this.#curve = curveSocketOptions(clientCurveKeys(options, process.env, "ServiceDealer"));
    const identity = resolveIdentity(options);
    this.#gpus = identity.gpus;
    this.#tags = identity.tags;
    this.#beforeLeave = options.beforeLeave;
    this.#recycling = new Recycling(options, {
      serving: () => this.#state !== "stopped" && this.#state !== "draining",
      recycle: (reason) => {
        this.#log.info(`${this.serviceName} ${reason.message}: draining and stopping for a fresh process`);
        void this.stop();
      },
      warn: (message) => this.#log.warn(message),
    });
    this.#calls = new CallRunner({
      serviceName: () => this.serviceName,
      target: this,
      methods: () => this.#methods,
      notStarting: () => (this.#state === "setup" || this.#state === "draining" ? this.#state : undefined),
      send: (frames) => this.#socket?.send(frames),
      warn: (message) => this.#log.warn(message),
      callFinished: () => this.#recycling.countCall(),
    });
  }

  /**
   * Runs once per instance before it takes any work: load a model, open a pool. The dealer is
   * registered meanwhile, in state "setup" (discovery shows it; the router sends it nothing), and
   * serves once this resolves. A setup() that throws is a start-up failure: start() rejects with
   * it, and `voidrail dealer` exits 78 (not restarted). Heartbeats go on while it runs, even if it
   * blocks the event loop (the heartbeat thread). Default: nothing.
   *
   * @example
   * class Embedder extends ServiceDealer {
   *   model!: Model;
   *   override async setup() { this.model = await loadModel("/models/e5.onnx"); }
   *   override async teardown() { await this.model.dispose(); }
   * }
   */
  async setup(): Promise<void> {}

  /**
   * Runs once after the instance drained (stop(): nothing runs on it any more), before it
   * unregisters: free what setup() took. Not run when setup() failed. An error is logged; stop()
   * still resolves. Default: nothing.
   */
  async teardown(): Promise<void> {}

  /** Tags this dealer registers with (discovery shows them; calls `require` them). */
  get tags(): Readonly<Record<string, string>> {
    return this.#tags ?? {};
  }

  /** The GPUs it reports (the `gpus` option or VOIDRAIL_GPU). */
  get gpus(): readonly string[] {
    return this.#gpus;
  }

  /** This dealer's CURVE public key (Z85), its identity at a CURVE router; undefined without CURVE. */
  get curvePublicKey(): string | undefined {
    return this.#curve.curveSecretKey === undefined ? undefined : curvePublicKey(this.#curve.curveSecretKey);
  }

  /** Whether the router has accepted this dealer's registration (and not lost it since). */
  get registered(): boolean {
    return this.#state === "registered";
  }

  /** Requests running now. */
  get load(): number {
    return this.#calls.load;
  }

  /**
   * Connects and registers. Resolves once the router has accepted the registration; rejects with
   * AuthError on a bad key, or ConnectionError after `startTimeout`. After a lost connection or a
   * router restart the dealer registers again by itself.
   */
  async start(): Promise<void> {
    if (this.#socket) return this.#whenRegistered();
    const otelLoaded = loadOtel();
    const definitions = collectMethods(this);
    if (definitions.length === 0) throw new ValidationError(`${this.serviceName} has no @serviceMethod methods`);
    this.#methods = new Map(definitions.map((definition) => [definition.name, definition]));
    this.#needsSetup = this.setup !== ServiceDealer.prototype.setup && !this.#setupDone;
    const socketOptions = {
      // Built at each connect: "setup" until setup() has finished, then a plain registration.
      helloMessage: () => encodeMessage("HELLO", this.#helloHeader()),
      heartbeatInterval: Math.round(this.#dealerOptions.heartbeatInterval * 1000),
      heartbeatTimeout: Math.round(this.#dealerOptions.heartbeatTimeout * 1000),
      reconnectInterval: 100,
      reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
    };
    const warn = (message: string) => this.#log.warn(message);
    const socket = new Dealer({ ...socketOptions, ...this.#curve, logger: { warn } });
    this.#socket = socket;
    if (this.#heartbeatThread) this.#heartbeat = new HeartbeatThread(this.#dealerOptions.routerAddress, warn, this.#curve);
    this.#state = "connecting";
    socket.events.on("disconnect", () => this.#onDisconnect());
    socket.events.on("handshake:error", ({ error }) => {
      if (error.code !== ZmtpErrorCode.SECURITY || this.#registeredWaiters.length === 0) return;
      const refused = curveRefusal(error.message, this.#dealerOptions.routerAddress);
      this.#log.error(`${this.serviceName} could not register: ${refused.message}`);
      for (const waiter of this.#registeredWaiters.splice(0)) waiter.reject(refused);
    });
    socket.connect(this.#dealerOptions.routerAddress);
    void consumeMessages<Uint8Array[]>(socket, (frames) => this.#onMessage(frames), this.#log, this.serviceName);
    try {
      await this.#whenRegistered(this.#dealerOptions.startTimeout);
      await otelLoaded;
    } catch (error) {
      await this.#closeSocket();
      throw error;
    }
    if (this.#needsSetup) await this.#runSetup();
    // Not for a dealer that was stopped while its setup() ran.
    if (this.#socket !== null && (this.#state as DealerState) !== "draining") this.#recycling.startMemoryChecks();
  }

  /** Runs setup() once; then READY (serving), or, when it throws, BYE and a rejected start(). */
  async #runSetup(): Promise<void> {
    const started = Date.now();
    const running = (async () => this.setup())();
    this.#setupRunning = running.catch(() => undefined);
    try {
      await running;
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      this.#log.error(`${this.serviceName} setup() failed: ${message}`);
      if (this.#socket && (this.#state === "setup" || this.#state === "draining")) await this.#socket.send(encodeMessage("BYE", {}));
      await this.#closeSocket();
      // A plain Error that keeps the service's own one as its cause: start() failed because of it.
      throw new Error(`setup() failed: ${message}`, { cause: error });
    } finally {
      this.#setupRunning = undefined;
    }
    this.#setupDone = true;
    this.#needsSetup = false;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (this.#state === "setup") {
      this.#state = "registered";
      await this.#socket?.send(encodeMessage("READY", {}));
      this.#log.info(`${this.serviceName} ${this.dealerId} setup() finished in ${seconds} s; serving`);
    } else if (this.#state === "stopped" || this.#state === "draining") {
      this.#log.info(`${this.serviceName} setup() finished in ${seconds} s, but the dealer is stopping`);
    }
    // "connecting": the next HELLO registers it as serving.
  }

  /**
   * Drains and leaves: the router gives this dealer no new work, running requests finish, then
   * the dealer unregisters and closes its connection.
   */
  async stop(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    if (this.#state === "registered" || this.#state === "setup") {
      this.#state = "draining";
      await socket.send(encodeMessage("DRAIN", {}));
      // A setup() under way finishes first: teardown() must not race it. One that failed has
      // already left (BYE) and closed the connection.
      if (this.#setupRunning !== undefined) await this.#setupRunning;
      if (this.#socket === socket) {
        if (this.#calls.load > 0) await this.#calls.whenIdle();
        // Still registered (draining: calls for its methods wait rather than fail) while what
        // setup() took is freed: a replacement may need it (the GPU's memory).
        await this.#runTeardown();
        await this.#beforeLeave?.();
        await socket.send(encodeMessage("BYE", {}));
      }
    } else if (this.#setupRunning !== undefined) await this.#setupRunning;
    await this.#closeSocket();
    await this.#runTeardown();
    this.#log.info(`${this.serviceName} stopped`);
  }

  /** teardown() once, only after a setup() that finished (or when there was none to run). */
  async #runTeardown(): Promise<void> {
    if (this.#tornDown || !this.#setupDone) return;
    this.#tornDown = true;
    try {
      await this.teardown();
    } catch (error) {
      this.#log.error(`${this.serviceName} teardown() failed: ${(error as Error)?.message ?? String(error)}`);
    }
  }

  /** `await using dealer = new MyService(...)` drains and stops it when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #closeSocket(): Promise<void> {
    const socket = this.#socket;
    this.#socket = null;
    this.#state = "stopped";
    this.#lostRouterAt = undefined;
    this.#recycling.stopMemoryChecks();
    this.#calls.abortAll(() => new ConnectionError("the dealer stopped"));
    const error = new ConnectionError("the dealer stopped before registering");
    for (const waiter of this.#registeredWaiters.splice(0)) waiter.reject(error);
    socket?.close();
    const heartbeat = this.#heartbeat;
    this.#heartbeat = undefined;
    await heartbeat?.close();
  }

  #helloHeader() {
    const methods: Record<string, MethodInfo> = {};
    for (const definition of this.#methods.values()) {
      const info: MethodInfo = { stream: definition.stream };
      if (definition.description !== undefined) info.description = definition.description;
      if (definition.paramsJsonSchema !== undefined) info.params = definition.paramsJsonSchema;
      if (definition.metadata !== undefined) info.metadata = definition.metadata;
      if (definition.taskDefaults !== undefined) info.task = definition.taskDefaults;
      methods[`${this.serviceName}.${definition.name}`] = info;
    }
    return {
      role: "dealer" as const,
      version: PROTOCOL_VERSION,
      service: this.serviceName,
      instanceId: this.#dealerOptions.instanceId,
      ...(HOST !== undefined ? { host: HOST } : {}),
      methods,
      ...(this.#dealerOptions.maxConcurrent !== undefined ? { maxConcurrent: this.#dealerOptions.maxConcurrent } : {}),
      ...(this.#dealerOptions.apiKey !== undefined ? { apiKey: this.#dealerOptions.apiKey } : {}),
      ...(this.#tags !== undefined ? { tags: this.#tags } : {}),
      ...(this.#gpus.length > 0 ? { gpus: this.#gpus } : {}),
      ...(this.#needsSetup && !this.#setupDone ? { state: DealerHelloState.SETUP } : {}),
    };
  }

  /** Resolves once welcomed (serving, or in setup). */
  #whenRegistered(timeoutSeconds = 0): Promise<void> {
    if (this.#state === "registered" || this.#state === "setup") return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = {
        resolve: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          if (timer) clearTimeout(timer);
          reject(error);
        },
      };
      if (timeoutSeconds > 0) {
        timer = setTimeout(() => {
          this.#registeredWaiters = this.#registeredWaiters.filter((w) => w !== waiter);
          reject(
            new ConnectionError(
              `${this.serviceName} could not register with the router at ${this.#dealerOptions.routerAddress} within ${timeoutSeconds} s`,
            ),
          );
        }, timeoutSeconds * 1000);
      }
      this.#registeredWaiters.push(waiter);
    });
  }

  #onDisconnect(): void {
    if (this.#state === "stopped") return;
    if (this.#state === "registered" || this.#state === "setup") {
      this.#lostRouterAt = Date.now();
      this.#log.warn(`${this.serviceName} lost the router; reconnecting`);
    }
    if (this.#state !== "draining") this.#state = "connecting";
    // The router has already re-dispatched or failed what this dealer held: stop working on it.
    this.#calls.abortAll(() => new ConnectionError("connection to the router lost"));
  }

  #onMessage(frames: Uint8Array[]): void {
    const message = decodeMessage(frames, "dealer");
    if (!message.ok) {
      this.#log.warn(`bad message from the router: ${message.error.message}`);
      if (message.kind === "REQUEST" && message.id !== undefined) this.#calls.replyError(message.id, message.error);
      return;
    }
    switch (message.kind) {
      case "WELCOME":
        return this.#onWelcome(message.header);
      case "REQUEST":
        void this.#calls.run(message);
        return;
      case "CANCEL":
        return this.#calls.cancel(message.header.id);
      case "CREDIT":
        return this.#calls.credit(message.header.id, message.header.n);
      case "ERROR":
        return this.#onConnectionError(message.header);
      case "DRAIN":
        // An operator drained this dealer at the router: finish, leave, and say so to whoever waits.
        this.#log.info(`${this.serviceName} was asked by the router to drain`);
        void this.stop().then(() => this.#drained());
        return;
    }
  }

  #onWelcome(header: DealerWelcomeHeader): void {
    this.dealerId = header.dealerId;
    this.#calls.routerWelcomed(header.version, header.maxMessageSize);
    if (header.beatToken !== undefined && header.heartbeatIntervalMs > 0)
      this.#heartbeat?.vouchFor(header.beatToken, header.heartbeatIntervalMs);
    if (this.#state === "draining") return;
    // Until setup() has finished the router holds it in "setup" (its HELLO said so).
    this.#state = this.#needsSetup && !this.#setupDone ? "setup" : "registered";
    // The instance id (host:pid) says which process this is, as the router's log line does.
    const settingUp = this.#state === "setup" ? "; running setup() before taking calls" : "";
    const registered = `registered as ${this.dealerId} (${this.#dealerOptions.instanceId}) with ${this.#methods.size} method(s)${settingUp}`;
    if (this.#lostRouterAt !== undefined) {
      // The pair to "lost the router": someone watching the log learns that the outage is over.
      const seconds = ((Date.now() - this.#lostRouterAt) / 1000).toFixed(1);
      this.#lostRouterAt = undefined;
      this.#log.info(`${this.serviceName} reconnected to the router after ${seconds} s; ${registered}`);
    } else this.#log.info(`${this.serviceName} ${registered}`);
    for (const waiter of this.#registeredWaiters.splice(0)) waiter.resolve();
  }

  #onConnectionError(wire: WireError): void {
    const error = explainRefusedKey(errorFromWire(wire), this.#dealerOptions.apiKey !== undefined, "dealer");
    const reason = (wire.data as { reason?: string } | undefined)?.reason;
    if (error instanceof AuthError) {
      this.#log.error(`${this.serviceName} could not register: ${error.message}`);
      for (const waiter of this.#registeredWaiters.splice(0)) waiter.reject(error);
      return;
    }
    if (reason === ProtocolFailure.NOT_REGISTERED && this.#socket && this.#state !== "draining") {
      // The router forgot us (it restarted between our messages): introduce ourselves again.
      void this.#socket.send(encodeMessage("HELLO", this.#helloHeader()));
      return;
    }
    this.#log.warn(`router reported: ${error.message}`);
  }
}
