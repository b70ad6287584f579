/**
 * ServiceDealer: a service instance. Subclass it, mark methods with @serviceMethod, start() it:
 * it connects to the router, registers its methods, runs the requests it is given and replies.
 */
import { hostname } from "node:os";
import * as v from "valibot";
import { createLogger, type Logger } from "../util/log.ts";
import {
  AuthError,
  CancelledError,
  ConnectionError,
  DealerHelloState,
  decodeArgs,
  decodeMessage,
  type DealerMessage,
  type DealerWelcomeHeader,
  type CompressionPlan,
  encodeValue,
  encodeMessage,
  errorFromWire,
  errorToWire,
  explainRefusedKey,
  type MethodInfo,
  PROTOCOL_VERSION,
  ProtocolFailure,
  ShuttingDownError,
  TagsSchema,
  TimeoutError,
  ValidationError,
  validationErrorFromIssues,
  VoidRailError,
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
import { type Deadline, Deadlines } from "../util/deadlines.ts";
import { curvePublicKey, Dealer, SEND_DONE, ZmtpErrorCode } from "../zmtp/index.ts";
import { loadOtel } from "../util/otel.ts";
import { startCallSpan, traceFields } from "./call-tracing.ts";
import { HeartbeatThread } from "./heartbeat-thread.ts";
import { resolveIdentity } from "./identity.ts";
import { binaryArgs, checkFits } from "./payloads.ts";
import { ProgressReporter } from "./progress-reporter.ts";
import { type RecycleReason, Recycling } from "./recycling.ts";

/** At most one PROGRESS per task attempt in this many milliseconds (the latest value wins). */
const PROGRESS_INTERVAL_MS = 100;
import { type CallContext, collectMethods, type MethodDefinition } from "./service-method.ts";

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
 * A running call's cancellation. Most methods never look at a signal, and an AbortController per
 * call was ~3% of a busy dealer's time: the controller is made only when a signal is asked for
 * (a method with a context argument, or a stream), and a plain flag serves the rest.
 */
class Cancellation {
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

interface RunningCall {
  cancellation: Cancellation;
  /** Set for an attempt of a task. */
  progress: ProgressReporter | undefined;
  credit: number | undefined;
  wakeProducer: (() => void) | undefined;
  deadline: Deadline | undefined;
}

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
  readonly #running = new Map<number, RunningCall>();
  readonly #deadlines = new Deadlines();
  #registeredWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  #idleWaiters: (() => void)[] = [];
  #drained!: () => void;
  /**
   * Resolves once an operator drained this dealer at the router (`voidrail client --drain`, the
   * dashboard) and it has stopped; never for a stop() of its own. `voidrail dealer` exits then.
   */
  readonly drainedByRouter: Promise<void> = new Promise((resolve) => (this.#drained = resolve));
  /** The router's maxMessageSize, from its WELCOME. */
  #routerMaxMessageSize: number | undefined;
  /** The revision in force, from the WELCOME: results are compressed only at 4 or above (PROTOCOL.md §12). */
  #revision = 1;
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
    return this.#running.size;
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
        if (this.#running.size > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
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
    for (const call of this.#running.values()) call.cancellation.abort(new ConnectionError("the dealer stopped"));
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
    for (const call of this.#running.values()) call.cancellation.abort(new ConnectionError("connection to the router lost"));
  }

  #onMessage(frames: Uint8Array[]): void {
    const message = decodeMessage(frames, "dealer");
    if (!message.ok) {
      this.#log.warn(`bad message from the router: ${message.error.message}`);
      if (message.kind === "REQUEST" && message.id !== undefined)
        this.#reply(encodeMessage("ERROR", { id: message.id, ...errorToWire(message.error) }));
      return;
    }
    switch (message.kind) {
      case "WELCOME":
        return this.#onWelcome(message.header);
      case "REQUEST":
        void this.#run(message);
        return;
      case "CANCEL":
        this.#running.get(message.header.id)?.cancellation.abort(new CancelledError("cancelled"));
        return;
      case "CREDIT": {
        const call = this.#running.get(message.header.id);
        if (call && call.credit !== undefined) {
          call.credit = Math.min(2_147_483_647, call.credit + message.header.n);
          call.wakeProducer?.();
        }
        return;
      }
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
    this.#routerMaxMessageSize = header.maxMessageSize;
    this.#revision = header.version;
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

  async #run(message: Extract<DealerMessage, { kind: "REQUEST" }>): Promise<void> {
    const { id, method: fullName, deadlineMs } = message.header;
    if (this.#state === "setup") {
      // Only a router that ignores HELLO's "setup" state sends work now: refused untouched, it goes elsewhere.
      return this.#replyError(
        id,
        new ShuttingDownError(`${this.serviceName} is running its setup() and did not start ${fullName}`, { data: { notStarted: true } }),
      );
    }
    if (this.#state === "draining") {
      // The request crossed our DRAIN on the wire. Refusing it untouched (notStarted) lets the router
      // give it to another dealer instead of reporting it lost when we leave (PROTOCOL.md §4.12).
      return this.#replyError(
        id,
        new ShuttingDownError(`${this.serviceName} is draining and did not start ${fullName}`, { data: { notStarted: true } }),
      );
    }
    const definition = fullName.startsWith(`${this.serviceName}.`)
      ? this.#methods.get(fullName.slice(this.serviceName.length + 1))
      : undefined;
    if (!definition)
      return this.#replyError(id, new ValidationError(`${fullName} is not a method of ${this.serviceName}`, { data: { path: "method" } }));
    const decoded = message.header.binary
      ? binaryArgs(message.payload, message.header.binary, message.binary)
      : decodeArgs(message.payload);
    if (!decoded.ok) return this.#replyError(id, decoded.error);
    let args = decoded.value;
    if (definition.params) {
      const checked = v.safeParse(definition.params, args);
      if (!checked.success) return this.#replyError(id, validationErrorFromIssues(checked.issues, "args"));
      args = checked.output as unknown[];
    }
    const cancellation = new Cancellation();
    const task = message.header.task;
    const progress = task
      ? new ProgressReporter((value) => this.#reply(encodeMessage("PROGRESS", { id, value })), PROGRESS_INTERVAL_MS)
      : undefined;
    const call: RunningCall = { cancellation, progress, credit: message.header.credit, wakeProducer: undefined, deadline: undefined };
    if (deadlineMs !== undefined) {
      call.deadline = this.#deadlines.add(deadlineMs, () => cancellation.abort(new TimeoutError(`deadline of ${deadlineMs} ms passed`)));
    }
    this.#running.set(id, call);
    const span = startCallSpan(fullName, task !== undefined, message.header.trace);
    let failure: unknown;
    try {
      if (definition.context) {
        const context: CallContext = {
          signal: cancellation.signal,
          requestId: id,
          method: fullName,
          ...(deadlineMs !== undefined ? { deadline: Date.now() + deadlineMs } : {}),
          ...(task ? { taskId: task.id, attempt: task.attempt } : {}),
          ...(message.header.trace ? traceFields(message.header.trace) : {}),
          progress: progress ? (value) => progress.report(value) : () => {},
        };
        args = [...args, context];
      }
      const fn = (this as unknown as Record<string, (...a: unknown[]) => unknown>)[definition.property];
      const result = span === undefined ? fn.apply(this, args) : span.run(() => fn.apply(this, args));
      const compress = this.#revision >= 4 ? definition.compress : undefined;
      if (definition.stream) await this.#streamResult(id, call, result, compress);
      else {
        // A synchronous method's value is sent at once: no turn of the microtask queue.
        const value = isThenable(result) ? await result : result;
        if (cancellation.aborted) throw cancellation.reason;
        const encoded = encodeValue(value, "result", compress);
        if (!encoded.ok) throw encoded.error;
        checkFits(encoded.json, encoded.binary?.frames, this.#routerMaxMessageSize, "result");
        progress?.flush();
        if (encoded.binary) this.#reply(encodeMessage("RESULT", { id, binary: encoded.binary.slots }, encoded.json, encoded.binary.frames));
        else this.#reply(encodeMessage("RESULT", { id }, encoded.json));
      }
    } catch (error) {
      failure = error;
      if (cancellation.aborted) progress?.cancel();
      else progress?.flush();
      this.#replyError(id, cancellation.aborted && !(error instanceof VoidRailError) ? cancellation.reason : error);
    } finally {
      span?.end(failure);
      call.deadline?.cancel();
      this.#running.delete(id);
      if (this.#running.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      this.#recycling.countCall();
    }
  }

  /** Sends a generator's items as CHUNKs as they come, never more than the client's credit. */
  async #streamResult(id: number, call: RunningCall, result: unknown, compress: CompressionPlan | undefined): Promise<void> {
    const iterable = result as AsyncIterable<unknown> | Iterable<unknown> | null;
    if (iterable === null || (typeof iterable !== "object" && typeof iterable !== "function")) {
      throw new ValidationError("a streaming method must return an iterable", { data: { path: "result" } });
    }
    const iterator: AsyncIterator<unknown> | Iterator<unknown> =
      Symbol.asyncIterator in iterable
        ? (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]()
        : (iterable as Iterable<unknown>)[Symbol.iterator]();
    const signal = call.cancellation.signal;
    let seq = 0;
    try {
      for (;;) {
        while (call.credit === 0 && !signal.aborted) {
          await new Promise<void>((resolve) => {
            call.wakeProducer = resolve;
            signal.addEventListener("abort", () => resolve(), { once: true });
          });
          call.wakeProducer = undefined;
        }
        if (signal.aborted) throw signal.reason;
        const step = await iterator.next();
        if (step.done) break;
        if (signal.aborted) throw signal.reason;
        const encoded = encodeValue(step.value, "chunk", compress);
        if (!encoded.ok) throw encoded.error;
        checkFits(encoded.json, encoded.binary?.frames, this.#routerMaxMessageSize, "chunk");
        if (call.credit !== undefined) call.credit--;
        // Awaiting the send is the backpressure: a full connection pauses the producer.
        const header = encoded.binary ? { id, seq: seq++, binary: encoded.binary.slots } : { id, seq: seq++ };
        await this.#socket?.send(encodeMessage("CHUNK", header, encoded.json, encoded.binary?.frames));
      }
    } catch (error) {
      await iterator.return?.();
      throw error;
    }
    this.#reply(encodeMessage("END", { id, count: seq }));
  }

  #replyError(id: number, error: unknown): void {
    this.#reply(encodeMessage("ERROR", { id, ...errorToWire(error) }));
  }

  #reply(frames: Uint8Array[]): void {
    const sent = this.#socket?.send(frames);
    if (sent !== undefined && sent !== SEND_DONE) sent.catch((error: Error) => this.#log.warn(`could not reply: ${error.message}`));
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as PromiseLike<unknown>).then === "function"
  );
}
