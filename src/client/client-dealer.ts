/**
 * ClientDealer: calls service methods through the router, unary or streaming, and reads the
 * router's monitoring data. Runs on Bun and on Node ≥ 20. This file holds the connection (HELLO,
 * WELCOME, reconnect, the table of calls in flight), unary calls and INFO; streams are in
 * client-streams.ts, trace context and spans in call-tracing.ts, task verbs in task-verbs.ts.
 */
import * as v from "valibot";
import { createLogger, type Logger, silentLogger } from "../util/log.ts";
import {
  type ClientMessage,
  type ClientRequestHeader,
  type ClustersInfo,
  CancelledError,
  checkFits,
  ConnectionError,
  decodeValue,
  decodeMessage,
  encodeValue,
  encodeMessage,
  errorFromWire,
  explainRefusedKey,
  type InfoTopic,
  PROTOCOL_VERSION,
  resolveCompress,
  type QueuesInfo,
  type RouterInfo,
  type ServicesInfo,
  type TaskEvent,
  type TaskInfo,
  type FlowInfo,
  type TaskPage,
  TimeoutError,
  ValidationError,
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
import { type Deadline, Deadlines } from "../util/deadlines.ts";
import { loadOtel } from "../util/otel.ts";
import { consumeMessages } from "../util/receive-loop.ts";
import { Dealer, SEND_DONE, ZmtpErrorCode } from "../zmtp/index.ts";
import { Schedules } from "./schedule-verbs.ts";
import * as tasks from "./task-verbs.ts";
import type { FlowOptions, SubmitWithCallbacks, TaskChannel, TaskListFilter } from "./task-verbs.ts";
import type { FlowSignature } from "./flow-builders.ts";
import { type CallOptions, checkedRequire, checkMethodName, type EncodedArgs, MAX_TIMER_SECONDS } from "./call-options.ts";
import { startCallTrace, tracedSubmit } from "./call-tracing.ts";
import { openStream, type StreamCall, type StreamConnection } from "./client-streams.ts";

export type { CallOptions } from "./call-options.ts";

/** Options of a ClientDealer. Times are in seconds, as in the Python seed. */
export interface ClientDealerOptions {
  /** Router endpoint. Default "tcp://127.0.0.1:5555" (env VOIDRAIL_ROUTER_ADDRESS). */
  routerAddress?: string;
  /** Default per-call timeout; for streams, the longest wait for the next chunk. 0 = none. Default 30. */
  timeout?: number;
  /** API key when the router requires client authentication (env VOIDRAIL_API_KEY). */
  apiKey?: string;
  /** How often to check the router is alive (ZMTP PING), in seconds. Default 1. */
  heartbeatInterval?: number;
  /** Seconds connect() waits for the router's welcome. Default: `timeout`. */
  connectTimeout?: number;
  /** Chunks a stream may have in transit before the client asks for more. Default 64. */
  streamWindow?: number;
  /** The router's CURVE public key (40 Z85 characters): the connection is then encrypted (env VOIDRAIL_CURVE_SERVER_KEY). */
  curveServerKey?: string;
  /** This client's CURVE secret key; its public key is its identity at the router (env VOIDRAIL_CURVE_SECRET_KEY). Default: a fresh key pair. */
  curveSecretKey?: string;
  /** Logger. Default: quiet (warnings only via consola tagged "client"). */
  logger?: Logger;
}

const OptionsSchema = v.object({
  routerAddress: v.optional(EndpointOption),
  timeout: v.optional(SecondsOption),
  apiKey: v.optional(ApiKeyOption),
  heartbeatInterval: v.optional(SecondsOption),
  connectTimeout: v.optional(SecondsOption),
  streamWindow: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(1_000_000))),
  curveServerKey: v.optional(CurveKeyOption),
  curveSecretKey: v.optional(CurveKeyOption),
  logger: v.optional(v.any()),
});

interface UnaryCall {
  kind: "unary";
  /** What to send again after the connection to the router is lost; undefined: fail instead. */
  resendFrames: (() => Uint8Array[]) | undefined;
  resolve(value: unknown): void;
  reject(error: Error): void;
  cleanup(): void;
}

type PendingCall = UnaryCall | StreamCall;

export class ClientDealer {
  private readonly options: Required<Omit<ClientDealerOptions, "apiKey" | "logger" | "curveServerKey" | "curveSecretKey">> & {
    apiKey?: string;
  };
  private readonly curve: { curveServerKey?: string; curveSecretKey?: string };
  private readonly log: Logger;
  private socket: Dealer | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private readonly deadlines = new Deadlines();
  /** What streams (client-streams.ts) need of this client: the connection and its table of calls in flight. */
  private readonly streamConnection: StreamConnection;
  private welcomed = false;
  private welcomeWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  private authFailure: Error | undefined;
  /** The router's maxMessageSize, from its WELCOME (undefined: it did not say). */
  private routerMaxMessageSize: number | undefined;
  /** The revision in force, from the WELCOME: compressed binary values need 4 (PROTOCOL.md §12). */
  private revision = 1;

  constructor(options: ClientDealerOptions = {}) {
    checkOptions(OptionsSchema, options, "ClientDealer");
    this.options = {
      routerAddress: options.routerAddress ?? process.env.VOIDRAIL_ROUTER_ADDRESS ?? "tcp://127.0.0.1:5555",
      timeout: options.timeout ?? 30,
      apiKey: options.apiKey ?? (process.env.VOIDRAIL_API_KEY || undefined),
      heartbeatInterval: options.heartbeatInterval ?? 1,
      streamWindow: options.streamWindow ?? 64,
      connectTimeout: options.connectTimeout ?? options.timeout ?? 30,
    };
    this.log = options.logger ?? (process.env.VOIDRAIL_LOG_LEVEL ? createLogger("client") : silentLogger);
    this.curve = curveSocketOptions(clientCurveKeys(options, process.env, "ClientDealer"));
    this.streamConnection = {
      streamWindow: this.options.streamWindow,
      timeoutSeconds: this.options.timeout,
      ready: () => this.ready(),
      nextId: () => this.nextId++,
      encodeArgs: (args, compress) => this.encodeArgs(args, compress),
      send: (frames) => {
        if (this.socket) this.send(this.socket, frames);
      },
      cancel: (id) => this.cancel(id),
      track: (id, call) => this.pending.set(id, call),
      untrack: (id, call) => {
        if (this.pending.get(id) === call) this.pending.delete(id);
      },
    };
  }

  /**
   * Connects and introduces itself. Resolves once the router has welcomed this client; rejects
   * with AuthError on a bad key, or ConnectionError when the router does not answer within the
   * client's timeout.
   */
  async connect(): Promise<void> {
    // Started now, awaited after the socket exists: two connect() calls must not race to make two.
    const otelLoaded = loadOtel();
    if (!this.socket) {
      const intervalMs = Math.round(this.options.heartbeatInterval * 1000);
      const socket = new Dealer({
        helloMessage: () =>
          encodeMessage("HELLO", {
            role: "client",
            version: PROTOCOL_VERSION,
            ...(this.options.apiKey ? { apiKey: this.options.apiKey } : {}),
          }),
        heartbeatInterval: intervalMs,
        heartbeatTimeout: intervalMs * 3,
        reconnectInterval: 100,
        reconnectMaxInterval: RECONNECT_MAX_INTERVAL_MS,
        sendHighWaterMark: 10_000,
        receiveHighWaterMark: 10_000,
        logger: { warn: (message) => this.log.warn(message) },
        ...this.curve,
      });
      this.socket = socket;
      socket.events.on("disconnect", () => this.onDisconnect());
      // A refused CURVE handshake would only repeat on every reconnect: connect() fails at once.
      socket.events.on("handshake:error", ({ error }) => {
        if (error.code !== ZmtpErrorCode.SECURITY) return;
        const refused = curveRefusal(error.message, this.options.routerAddress);
        for (const waiter of this.welcomeWaiters.splice(0)) waiter.reject(refused);
      });
      socket.connect(this.options.routerAddress);
      void consumeMessages(socket, (frames) => this.onMessage(frames), this.log, "client");
    }
    await otelLoaded;
    if (this.welcomed) return;
    // The router refused our key on this connection and will not welcome it: say so at once.
    if (this.authFailure) throw this.authFailure;
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = this.options.connectTimeout > 0 ? Math.min(this.options.connectTimeout, MAX_TIMER_SECONDS) * 1000 : 0;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.welcomeWaiters = this.welcomeWaiters.filter((w) => w !== waiter);
              reject(
                new ConnectionError(`no answer from the router at ${this.options.routerAddress} within ${this.options.connectTimeout} s`),
              );
            }, timeoutMs)
          : undefined;
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
      this.welcomeWaiters.push(waiter);
    });
  }

  /** Closes the connection; calls still in flight fail with ConnectionError. */
  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.welcomed = false;
    this.failAll(new ConnectionError("the client was closed"), false);
    socket.close();
  }

  /** `await using client = new ClientDealer(...)` closes it when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Calls a unary method and resolves with its result.
   * @example await client.invoke("EchoService.echo", "Hello World")
   */
  invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    return this.call<T>(method, args);
  }

  /** `invoke` with per-call options. */
  async call<T = unknown>(method: string, args: unknown[] = [], options: CallOptions = {}): Promise<T> {
    checkMethodName(method);
    // Connected and welcomed: no await, so a call costs no extra turn of the microtask queue.
    const socket = this.socket !== null && this.welcomed && this.authFailure === undefined ? this.socket : await this.ready();
    const encodedArgs = this.encodeArgs(args, options.compress);
    const timeoutSeconds = options.timeout ?? this.options.timeout;
    const id = this.nextId++;
    const header: ClientRequestHeader = { id, method };
    const binaryFrames = encodedArgs.binary?.frames;
    if (encodedArgs.binary) header.binary = encodedArgs.binary.slots;
    if (timeoutSeconds > 0) header.timeoutMs = Math.max(1, Math.round(Math.min(timeoutSeconds, MAX_TIMER_SECONDS) * 1000));
    if (options.waitForDealer) header.waitForDealer = true;
    if (options.idempotent) header.idempotent = true;
    const require = checkedRequire(options.require);
    if (require !== undefined) header.require = require;
    // With OpenTelemetry and no trace context given: a client span, whose context the call carries.
    const { trace, end: endSpan } = startCallTrace(method, options);
    if (trace !== undefined) header.trace = trace;
    const frames = encodeMessage("REQUEST", header, encodedArgs.json, binaryFrames);
    return new Promise<T>((done, fail) => {
      const resolve =
        endSpan === undefined
          ? done
          : (value: T) => {
              endSpan();
              done(value);
            };
      const reject =
        endSpan === undefined
          ? fail
          : (error: Error) => {
              endSpan(error);
              fail(error);
            };
      let deadline: Deadline | undefined;
      const onAbort = () => {
        this.cancel(id);
        this.settle(id, new CancelledError("the call was cancelled", { cause: options.signal?.reason }));
      };
      const call: UnaryCall = {
        kind: "unary",
        // A router that has just restarted knows no methods until the dealers register again:
        // the retry waits for one (within the call's timeout) rather than fail NO_SUCH_METHOD.
        resendFrames: options.idempotent
          ? () => encodeMessage("REQUEST", { ...header, waitForDealer: true }, encodedArgs.json, binaryFrames)
          : undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
        cleanup: () => {
          deadline?.cancel();
          options.signal?.removeEventListener("abort", onAbort);
        },
      };
      if (options.signal?.aborted) return reject(new CancelledError("the call was cancelled before it started"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutSeconds > 0) {
        // The router enforces the timeout too; this one also covers a router that went silent.
        deadline = this.deadlines.add(Math.min(timeoutSeconds, MAX_TIMER_SECONDS) * 1000 + 250, () => {
          this.cancel(id);
          this.settle(
            id,
            new TimeoutError(`${method} did not finish within ${timeoutSeconds} s`, { data: { timeoutMs: timeoutSeconds * 1000 } }),
          );
        });
      }
      this.pending.set(id, call);
      this.send(socket, frames);
    });
  }

  /**
   * Calls a streaming method; iterate the result. Chunks arrive as the service produces them,
   * and the service is slowed to the speed of the loop. Leaving the loop early cancels the call.
   * @example for await (const n of client.stream("EchoService.streamNumbers", 0, 5)) console.log(n);
   */
  stream<T = unknown>(method: string, ...args: unknown[]): AsyncIterable<T> {
    return this.callStream<T>(method, args);
  }

  /** `stream` with per-call options; `timeout` bounds the wait for each next chunk. */
  callStream<T = unknown>(method: string, args: unknown[] = [], options: CallOptions = {}): AsyncIterable<T> {
    return { [Symbol.asyncIterator]: () => openStream<T>(this.streamConnection, method, args, options) };
  }

  /** Methods offered now: `{ "Service.method": { description, params, stream, instances } }`. */
  discoverServices(): Promise<ServicesInfo> {
    return this.info("services") as Promise<ServicesInfo>;
  }

  /** One entry per registered dealer instance. */
  discoverClusters(): Promise<ClustersInfo> {
    return this.info("clusters") as Promise<ClustersInfo>;
  }

  /** Mode, address, uptime, dealer and request counts, auth requirements. */
  getRouterInfo(): Promise<RouterInfo> {
    return this.info("router") as Promise<RouterInfo>;
  }

  /** Per method: queueLength, availableServices, busyServices. */
  getQueueStatus(): Promise<QueuesInfo> {
    return this.info("queues") as Promise<QueuesInfo>;
  }

  /**
   * Drains a dealer (Celery's `control shutdown`): the router gives it no new calls and tells it
   * to finish what it runs and leave. `dealerId` is the router's id for it (discoverClusters()).
   * Rejects with ValidationError for an id no registered dealer has.
   */
  async drainDealer(dealerId: string): Promise<{ dealerId: string; draining: true }> {
    if (typeof dealerId !== "string" || !/^[\x21-\x7e]{1,128}$/.test(dealerId))
      throw new ValidationError("dealerId must be 1-128 printable ASCII characters", { data: { path: "dealerId" } });
    await this.request((id) => encodeMessage("DRAIN", { id, dealerId }), this.options.timeout, `DRAIN ${dealerId}`, false);
    return { dealerId, draining: true };
  }

  private info(topic: InfoTopic): Promise<unknown> {
    return this.request((id) => encodeMessage("INFO", { id, topic }), this.options.timeout, `INFO ${topic}`, true);
  }

  // ---- background tasks (the verbs are in task-verbs.ts) ----

  /**
   * Submits `method(...args)` as a background task; resolves once the router has stored it.
   * @example const task = await client.submit("Img.resize", [bytes], { priority: 7, retries: 3 }); task.id
   */
  submit(method: string, args: unknown[] = [], options: SubmitWithCallbacks = {}): Promise<TaskInfo> {
    // With OpenTelemetry and no trace context given: a producer span, the parent of every attempt's.
    return tracedSubmit(method, options, (traced) => tasks.submit(this.channel, method, args, traced));
  }

  /**
   * Submits a workflow built with `task`, `chain`, `group` and `chord`; resolves once the router
   * has stored all of it. The flow is a task: `waitTask(flow.id)` gives its result,
   * `revokeTask(flow.id)` revokes every step not yet finished.
   * @example const flow = await client.submitFlow(chain(task("Data.fetch", [url]), task("Data.save")), { onFailure: task("Ops.alert") });
   */
  submitFlow(flow: FlowSignature, options: FlowOptions = {}): Promise<TaskInfo> {
    return tasks.submitFlow(this.channel, flow, options);
  }

  /** The flow `taskId` is the root of, as a tree: each node's task id and state; TaskNotFoundError for an unknown id. */
  getFlow(taskId: string): Promise<FlowInfo> {
    return tasks.getFlow(this.channel, taskId);
  }

  /** The task's state, progress, result or error, attempts and times; TaskNotFoundError for an unknown id. */
  getTask(taskId: string): Promise<TaskInfo> {
    return tasks.getTask(this.channel, taskId);
  }

  /** The seed's name for `getTask`. */
  getTaskStatus(taskId: string): Promise<TaskInfo> {
    return this.getTask(taskId);
  }

  /**
   * Resolves with the task's result once it succeeded; rejects with its typed error when it
   * failed, was revoked or expired, or with TimeoutError after `timeout` seconds (the task goes on).
   */
  waitTask<T = unknown>(taskId: string, options: { timeout?: number } = {}): Promise<T> {
    return tasks.waitTask<T>(this.channel, taskId, options.timeout ?? this.options.timeout);
  }

  /** The task's events as they happen (`{ state, progress?, at }`), ending at a final state. Leaving the loop stops watching. */
  watchTask(taskId: string): AsyncIterable<TaskEvent> {
    return tasks.watchTask(this.channel, taskId);
  }

  /** Revokes the task: if it has not started it never will; if it runs, its AbortSignal fires. */
  revokeTask(taskId: string, options: { terminate?: boolean } = {}): Promise<TaskInfo> {
    return tasks.revokeTask(this.channel, taskId, options);
  }

  /**
   * Runs a failed, revoked or expired task again, as a new task with the same method, arguments,
   * priority and policy; resolves with the new task (its own id). The old record is kept as it was.
   */
  retryTask(taskId: string): Promise<TaskInfo> {
    return tasks.retryTask(this.channel, taskId);
  }

  /** Tasks newest first, filtered by state, method and creation time; pass `cursor` back for the next page. */
  listTasks(filter: TaskListFilter = {}): Promise<TaskPage> {
    return tasks.listTasks(this.channel, filter);
  }

  /**
   * Periodic tasks the router fires: `set` (cron or every), `list`, `remove`, `pause`, `resume`.
   * @example await client.schedules.set({ name: "daily-report", cron: "0 3 * * *", timezone: "Europe/Berlin", method: "Report.generate" });
   */
  get schedules(): Schedules {
    this.scheduleVerbs ??= new Schedules(this.channel);
    return this.scheduleVerbs;
  }

  private scheduleVerbs: Schedules | undefined;

  /** What the task verbs need of this client: one answer per request, or a stream of chunks. */
  private readonly channel: TaskChannel = {
    request: (build, timeoutSeconds, what) => this.request(build, timeoutSeconds, what, false),
    subscribe: async (build, handlers) => {
      const socket = await this.ready();
      const id = this.nextId++;
      this.pending.set(id, { kind: "stream", ...handlers });
      this.send(socket, build(id));
      return {
        cancel: () => {
          if (this.pending.get(id)?.kind !== "stream") return;
          this.pending.delete(id);
          this.cancel(id);
        },
      };
    },
  };

  /** Sends one request built for a fresh id and resolves with its RESULT's decoded payload. */
  private async request(build: (id: number) => Uint8Array[], timeoutSeconds: number, what: string, resend: boolean): Promise<unknown> {
    const socket = await this.ready();
    const id = this.nextId++;
    const frames = build(id);
    return new Promise((resolve, reject) => {
      const deadline =
        timeoutSeconds > 0
          ? this.deadlines.add(Math.min(timeoutSeconds, MAX_TIMER_SECONDS) * 1000, () => {
              this.settle(id, new TimeoutError(`no answer to ${what} within ${timeoutSeconds} s`));
            })
          : undefined;
      const call: UnaryCall = {
        kind: "unary",
        resendFrames: resend ? () => frames : undefined,
        resolve,
        reject,
        cleanup: () => deadline?.cancel(),
      };
      this.pending.set(id, call);
      this.send(socket, frames);
    });
  }

  private async ready(): Promise<Dealer> {
    if (!this.socket || !this.welcomed) await this.connect();
    if (this.authFailure) throw this.authFailure;
    return this.socket!;
  }

  private cancel(id: number): void {
    if (this.socket && id > 0) this.send(this.socket, encodeMessage("CANCEL", { id }));
  }

  private send(socket: Dealer, frames: Uint8Array[]): void {
    const sent = socket.send(frames);
    if (sent !== SEND_DONE) sent.catch((error: Error) => this.log.warn(`send failed: ${error.message}`));
  }

  private onMessage(frames: Uint8Array[]): void {
    const message = decodeMessage(frames, "client");
    if (!message.ok) {
      this.log.warn(`bad message from the router: ${message.error.message}`);
      if (message.id !== undefined) this.settle(message.id, message.error);
      return;
    }
    this.dispatch(message);
  }

  /** The arguments as a REQUEST carries them; throws ValidationError when they cannot be sent or exceed the router's limit. */
  private encodeArgs(args: unknown[], compress: CallOptions["compress"]): EncodedArgs {
    const encodedArgs = encodeValue(args, "args", this.compressionFor(compress));
    if (!encodedArgs.ok) throw encodedArgs.error;
    checkFits(encodedArgs.json, encodedArgs.binary?.frames, this.routerMaxMessageSize, "args");
    return encodedArgs;
  }

  /** A call's compression plan (the option is checked either way); none below revision 4, whose peers cannot inflate. */
  private compressionFor(option: CallOptions["compress"]): ReturnType<typeof resolveCompress> {
    const plan = resolveCompress(option, "compress");
    return this.revision >= 4 ? plan : undefined;
  }

  private dispatch(message: ClientMessage): void {
    switch (message.kind) {
      case "WELCOME":
        this.welcomed = true;
        this.routerMaxMessageSize = message.header.maxMessageSize;
        this.revision = message.header.version;
        this.authFailure = undefined;
        for (const waiter of this.welcomeWaiters.splice(0)) waiter.resolve();
        return;
      case "RESULT": {
        const call = this.pending.get(message.header.id);
        if (call?.kind !== "unary") return;
        this.pending.delete(message.header.id);
        call.cleanup();
        const decoded = decodeValue(message.payload, message.header.binary, message.binary);
        if (decoded.ok) call.resolve(decoded.value);
        else call.reject(decoded.error);
        return;
      }
      case "CHUNK": {
        const call = this.pending.get(message.header.id);
        if (call?.kind === "stream") call.onChunk(message.header.seq, message.payload, message.header.binary, message.binary);
        return;
      }
      case "END": {
        const call = this.pending.get(message.header.id);
        if (call?.kind !== "stream") return;
        this.pending.delete(message.header.id);
        call.onEnd(message.header.count);
        return;
      }
      case "ERROR": {
        const header = message.header;
        const error = errorFromWire(header);
        if (header.id !== undefined) return this.settle(header.id, error);
        if (error.code === "AUTH_FAILED") {
          const refused = explainRefusedKey(error, this.options.apiKey !== undefined, "client");
          this.authFailure = refused;
          for (const waiter of this.welcomeWaiters.splice(0)) waiter.reject(refused);
          return;
        }
        if (error.code === "SHUTTING_DOWN" && !this.welcomed && this.welcomeWaiters.length > 0) {
          // A stopping router refuses our HELLO: say so now instead of waiting out the timeout.
          for (const waiter of this.welcomeWaiters.splice(0)) waiter.reject(error);
          return;
        }
        this.log.warn(`router reported: ${error.message}`);
        return;
      }
    }
  }

  /** Fails one call in flight, once: later answers for its id are ignored. */
  private settle(id: number, error: Error): void {
    const call = this.pending.get(id);
    if (!call) return;
    this.pending.delete(id);
    if (call.kind === "unary") {
      call.cleanup();
      call.reject(error);
    } else call.onError(error);
  }

  private onDisconnect(): void {
    this.welcomed = false;
    this.failAll(new ConnectionError(`lost the connection to the router at ${this.options.routerAddress}`), true);
  }

  /** Fails every call in flight, except idempotent unary calls when `resend` (sent again after reconnect). */
  private failAll(error: Error, resend: boolean): void {
    for (const [id, call] of [...this.pending]) {
      if (resend && call.kind === "unary" && call.resendFrames && this.socket) {
        this.send(this.socket, call.resendFrames());
        continue;
      }
      this.pending.delete(id);
      if (call.kind === "unary") {
        call.cleanup();
        call.reject(error);
      } else call.onError(error);
    }
  }
}
