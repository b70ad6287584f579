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
  decodeArgs,
  decodeMessage,
  type DealerMessage,
  type DealerWelcomeHeader,
  encodeValue,
  encodeMessage,
  errorFromWire,
  errorToWire,
  explainRefusedKey,
  type MethodInfo,
  PROTOCOL_VERSION,
  ProtocolFailure,
  ShuttingDownError,
  TimeoutError,
  ValidationError,
  validationErrorFromIssues,
  VoidRailError,
  type WireError,
} from "../protocol/index.ts";
import { ApiKeyOption, checkOptions, EndpointOption, RECONNECT_MAX_INTERVAL_MS, SecondsOption } from "../options.ts";
import { consumeMessages } from "../util/receive-loop.ts";
import { type Deadline, Deadlines } from "../util/deadlines.ts";
import { Dealer, SEND_DONE } from "../zmtp/index.ts";
import { contextFromHeaders, endSpan, loadOtel, otel, startSpan } from "../util/otel.ts";
import { HeartbeatThread } from "./heartbeat-thread.ts";
import { binaryArgs, checkFits } from "./payloads.ts";
import { ProgressReporter } from "./progress-reporter.ts";

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
  /** Logger (consola-compatible). Default: consola tagged with the service name. */
  logger?: Logger;
}

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
  logger: v.optional(v.any()),
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

type DealerState = "stopped" | "connecting" | "registered" | "draining";

export class ServiceDealer {
  readonly serviceName: string;
  /** Router-assigned id, known once registered. */
  dealerId: string | undefined;
  readonly #dealerOptions: Required<
    Omit<ServiceDealerOptions, "serviceName" | "maxConcurrent" | "apiKey" | "logger" | "heartbeatThread">
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
  /** When the connection of a registered dealer was lost; cleared once registered again. */
  #lostRouterAt: number | undefined;

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
    const hello = encodeMessage("HELLO", this.#helloHeader());
    const socketOptions = {
      helloMessage: hello,
      heartbeatInterval: Math.round(this.#dealerOptions.heartbeatInterval * 1000),
      heartbeatTimeout: Math.round(this.#dealerOptions.heartbeatTimeout * 1000),
      reconnectInterval: 100,
      reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
    };
    const warn = (message: string) => this.#log.warn(message);
    const socket = new Dealer({ ...socketOptions, logger: { warn } });
    this.#socket = socket;
    if (this.#heartbeatThread) this.#heartbeat = new HeartbeatThread(this.#dealerOptions.routerAddress, warn);
    this.#state = "connecting";
    socket.events.on("disconnect", () => this.#onDisconnect());
    socket.connect(this.#dealerOptions.routerAddress);
    void consumeMessages<Uint8Array[]>(socket, (frames) => this.#onMessage(frames), this.#log, this.serviceName);
    try {
      await this.#whenRegistered(this.#dealerOptions.startTimeout);
      await otelLoaded;
    } catch (error) {
      await this.#closeSocket();
      throw error;
    }
  }

  /**
   * Drains and leaves: the router gives this dealer no new work, running requests finish, then
   * the dealer unregisters and closes its connection.
   */
  async stop(): Promise<void> {
    const socket = this.#socket;
    if (!socket) return;
    if (this.#state === "registered") {
      this.#state = "draining";
      await socket.send(encodeMessage("DRAIN", {}));
      if (this.#running.size > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      await socket.send(encodeMessage("BYE", {}));
    }
    await this.#closeSocket();
    this.#log.info(`${this.serviceName} stopped`);
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
    };
  }

  #whenRegistered(timeoutSeconds = 0): Promise<void> {
    if (this.#state === "registered") return Promise.resolve();
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
    if (this.#state === "registered") {
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
    if (header.beatToken !== undefined && header.heartbeatIntervalMs > 0)
      this.#heartbeat?.vouchFor(header.beatToken, header.heartbeatIntervalMs);
    if (this.#state === "draining") return;
    this.#state = "registered";
    // The instance id (host:pid) says which process this is, as the router's log line does.
    const registered = `registered as ${this.dealerId} (${this.#dealerOptions.instanceId}) with ${this.#methods.size} method(s)`;
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
    // With OpenTelemetry: a server span for the run, child of the caller's trace context.
    const api = otel();
    const trace = message.header.trace;
    const span =
      api === undefined
        ? undefined
        : startSpan(
            api,
            fullName,
            task ? api.SpanKind.CONSUMER : api.SpanKind.SERVER,
            trace ? contextFromHeaders(api, trace.traceparent, trace.tracestate) : api.ROOT_CONTEXT,
          );
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
      // The method runs inside its span's context, so spans it makes are children of it.
      const result =
        span === undefined
          ? fn.apply(this, args)
          : api!.context.with(api!.trace.setSpan(api!.context.active(), span), () => fn.apply(this, args));
      if (definition.stream) await this.#streamResult(id, call, result);
      else {
        // A synchronous method's value is sent at once: no turn of the microtask queue.
        const value = isThenable(result) ? await result : result;
        if (cancellation.aborted) throw cancellation.reason;
        const encoded = encodeValue(value, "result");
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
      if (span !== undefined) endSpan(api!, span, failure);
      call.deadline?.cancel();
      this.#running.delete(id);
      if (this.#running.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  /** Sends a generator's items as CHUNKs as they come, never more than the client's credit. */
  async #streamResult(id: number, call: RunningCall, result: unknown): Promise<void> {
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
        const encoded = encodeValue(step.value, "chunk");
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

/** A REQUEST's trace context as CallContext fields. */
function traceFields(trace: { traceparent: string; tracestate?: string }): { traceparent: string; tracestate?: string } {
  return trace.tracestate === undefined
    ? { traceparent: trace.traceparent }
    : { traceparent: trace.traceparent, tracestate: trace.tracestate };
}
