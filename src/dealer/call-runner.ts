/**
 * Running the calls a dealer is given: a REQUEST's method looked up, its arguments decoded and
 * checked, the method run (inside its trace span, under its deadline and cancellation), and its
 * RESULT, CHUNKs and END or its ERROR sent back, compressed as the router's revision allows. It
 * keeps the calls that run (CANCEL, CREDIT, load, idle) and sees its dealer only through
 * CallRunnerHost, so ServiceDealer keeps the connection's lifecycle.
 */
import * as v from "valibot";
import {
  CancelledError,
  type CompressionPlan,
  type DealerMessage,
  decodeArgs,
  encodeMessage,
  encodeValue,
  errorToWire,
  ShuttingDownError,
  TimeoutError,
  ValidationError,
  VoidRailError,
  validationErrorFromIssues,
} from "../protocol/index.ts";
import { type Deadline, Deadlines } from "../util/deadlines.ts";
import { SEND_DONE } from "../zmtp/index.ts";
import { startCallSpan, traceFields } from "./call-tracing.ts";
import { binaryArgs, checkFits } from "./payloads.ts";
import { ProgressReporter } from "./progress-reporter.ts";
import type { CallContext, MethodDefinition } from "./service-method.ts";

/** At most one PROGRESS per task attempt in this many milliseconds (the latest value wins). */
const PROGRESS_INTERVAL_MS = 100;

/** A REQUEST as the dealer decoded it. */
export type RequestMessage = Extract<DealerMessage, { kind: "REQUEST" }>;

/** What CallRunner needs of its dealer. */
export interface CallRunnerHost {
  /** The part before the dot in "Service.method" (read at each call: a subclass may set it as a field). */
  serviceName(): string;
  /** The object whose @serviceMethod methods run (`this` inside them): the dealer subclass instance. */
  readonly target: object;
  /** The methods by their name without the service, as collected when the dealer started. */
  methods(): ReadonlyMap<string, MethodDefinition>;
  /** Why a new call is refused untouched now: the dealer runs its setup(), or drains; undefined while it serves. */
  notStarting(): "setup" | "draining" | undefined;
  /** Sends a message to the router; undefined when there is no connection. */
  send(frames: Uint8Array[]): Promise<void> | undefined;
  warn(message: string): void;
  /** A call has finished, whatever its outcome, after its reply was sent (recycling counts it). */
  callFinished(): void;
}

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

export class CallRunner {
  readonly #host: CallRunnerHost;
  readonly #running = new Map<number, RunningCall>();
  readonly #deadlines = new Deadlines();
  #idleWaiters: (() => void)[] = [];
  /** The router's maxMessageSize, from its WELCOME. */
  #routerMaxMessageSize: number | undefined;
  /** The revision in force, from the WELCOME: results are compressed only at 4 or above (PROTOCOL.md §12). */
  #revision = 1;

  constructor(host: CallRunnerHost) {
    this.#host = host;
  }

  /** Calls running now. */
  get load(): number {
    return this.#running.size;
  }

  /** Takes the terms of a WELCOME: the revision in force and the router's message size limit. */
  routerWelcomed(revision: number, maxMessageSize: number | undefined): void {
    this.#revision = revision;
    this.#routerMaxMessageSize = maxMessageSize;
  }

  /** Resolves once no call runs; call it only while some run (`load > 0`). */
  whenIdle(): Promise<void> {
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** CANCEL: the call stops with CancelledError (a call that has already finished is ignored). */
  cancel(id: number): void {
    this.#running.get(id)?.cancellation.abort(new CancelledError("cancelled"));
  }

  /** CREDIT: a stream may send `n` more chunks. */
  credit(id: number, n: number): void {
    const call = this.#running.get(id);
    if (call && call.credit !== undefined) {
      call.credit = Math.min(2_147_483_647, call.credit + n);
      call.wakeProducer?.();
    }
  }

  /** Aborts every running call, each with an error of its own from `reason`. */
  abortAll(reason: () => Error): void {
    for (const call of this.#running.values()) call.cancellation.abort(reason());
  }

  /** Answers the request `id` with an ERROR. */
  replyError(id: number, error: unknown): void {
    this.#reply(encodeMessage("ERROR", { id, ...errorToWire(error) }));
  }

  /** Runs a REQUEST to its reply; never rejects (a failure is the call's ERROR). */
  async run(message: RequestMessage): Promise<void> {
    const { id, method: fullName, deadlineMs } = message.header;
    const serviceName = this.#host.serviceName();
    const notStarting = this.#host.notStarting();
    if (notStarting === "setup") {
      // Only a router that ignores HELLO's "setup" state sends work now: refused untouched, it goes elsewhere.
      return this.replyError(
        id,
        new ShuttingDownError(`${serviceName} is running its setup() and did not start ${fullName}`, { data: { notStarted: true } }),
      );
    }
    if (notStarting === "draining") {
      // The request crossed our DRAIN on the wire. Refusing it untouched (notStarted) lets the router
      // give it to another dealer instead of reporting it lost when we leave (PROTOCOL.md §4.12).
      return this.replyError(
        id,
        new ShuttingDownError(`${serviceName} is draining and did not start ${fullName}`, { data: { notStarted: true } }),
      );
    }
    const definition = fullName.startsWith(`${serviceName}.`)
      ? this.#host.methods().get(fullName.slice(serviceName.length + 1))
      : undefined;
    if (!definition)
      return this.replyError(id, new ValidationError(`${fullName} is not a method of ${serviceName}`, { data: { path: "method" } }));
    const decoded = message.header.binary
      ? binaryArgs(message.payload, message.header.binary, message.binary)
      : decodeArgs(message.payload);
    if (!decoded.ok) return this.replyError(id, decoded.error);
    let args = decoded.value;
    if (definition.params) {
      const checked = v.safeParse(definition.params, args);
      if (!checked.success) return this.replyError(id, validationErrorFromIssues(checked.issues, "args"));
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
      const target = this.#host.target;
      const fn = (target as Record<string, (...a: unknown[]) => unknown>)[definition.property];
      const result = span === undefined ? fn.apply(target, args) : span.run(() => fn.apply(target, args));
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
      this.replyError(id, cancellation.aborted && !(error instanceof VoidRailError) ? cancellation.reason : error);
    } finally {
      span?.end(failure);
      call.deadline?.cancel();
      this.#running.delete(id);
      if (this.#running.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      this.#host.callFinished();
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
        await this.#host.send(encodeMessage("CHUNK", header, encoded.json, encoded.binary?.frames));
      }
    } catch (error) {
      await iterator.return?.();
      throw error;
    }
    this.#reply(encodeMessage("END", { id, count: seq }));
  }

  #reply(frames: Uint8Array[]): void {
    const sent = this.#host.send(frames);
    if (sent !== undefined && sent !== SEND_DONE) sent.catch((error: Error) => this.#host.warn(`could not reply: ${error.message}`));
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as PromiseLike<unknown>).then === "function"
  );
}
