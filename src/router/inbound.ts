/**
 * Owns the router's receiving side: a message from the socket is decoded, its sender's session
 * looked up, and it goes to its handler by role and kind. Client kinds (REQUEST, INFO, CANCEL,
 * CREDIT) become calls and call transitions; dealer kinds (RESULT, CHUNK, END, ERROR, DRAIN,
 * BYE) settle calls or change the registration; BEAT vouches for a dealer; HELLO goes to the
 * sessions. A message that cannot be decoded is answered with one ERROR and dropped.
 */
import type { Buffer } from "node:buffer";
import {
  CancelledError,
  type ClientRequestHeader,
  type ErrorHeader,
  decodeMessage,
  errorToWire,
  peekMessage,
  ProtocolError,
  ProtocolFailure,
  type RouterMessage,
  ShuttingDownError,
  TimeoutError,
  ValidationError,
} from "../protocol/index.ts";
import type { Deadlines } from "../util/deadlines.ts";
import type { Logger } from "../util/log.ts";
import { FrameParts, type Router } from "../zmtp/index.ts";
import { binaryOf, type Call, type CallTable, type ReplySink } from "./calls.ts";
import { CollectHint } from "./collect-hint.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { ClientExtension, OwnedCallRequest } from "./extension.ts";
import type { HelloDeadline } from "./hello-deadline.ts";
import type { RouterInfoBuilder } from "./info.ts";
import type { OutboundPort } from "./outbound.ts";
import { type DealerRegistry, noSuchMethod, type RegisteredDealer } from "./registry.ts";
import { normalizeRequirement } from "./requirements.ts";
import { type ClientSession, describePeer, type Sessions } from "./sessions.ts";

const encoder = new TextEncoder();

/** Messages that only a registered dealer may send. */
type DealerMessage = Exclude<
  RouterMessage,
  { kind: "HELLO" | "BEAT" | "REQUEST" | "INFO" | "CANCEL" | "CREDIT" | "SUBMIT" | "TASK" | "FLOW" }
>;

export interface InboundContext {
  sessions: Sessions;
  registry: DealerRegistry;
  dispatcher: Dispatcher;
  calls: CallTable;
  info: RouterInfoBuilder;
  outbound: OutboundPort;
  deadlines: Deadlines;
  log: Logger;
  maxRedispatch: number;
  defaultTimeoutMs: number | undefined;
  isStopping(): boolean;
  /** The socket, for its routing-key cache and noteAlive; null when stopped. */
  socket(): Router | null;
  /** The layer above that serves SUBMIT and TASK, if one is attached. */
  extension(): ClientExtension | undefined;
  /** The running socket's HELLO deadline (only when client keys are required). */
  hello(): HelloDeadline | null;
}

export class Inbound {
  // The context's parts as own fields: every message reads several of them.
  private readonly sessions: Sessions;
  private readonly registry: DealerRegistry;
  private readonly dispatcher: Dispatcher;
  private readonly calls: CallTable;
  private readonly outbound: OutboundPort;
  private readonly log: Logger;
  /** The pieces of large frames are garbage once forwarded: collect after every 64 MiB of them (more if collecting is slow). */
  private readonly collectHint = new CollectHint(64 * 1024 * 1024);

  constructor(private readonly context: InboundContext) {
    this.sessions = context.sessions;
    this.registry = context.registry;
    this.dispatcher = context.dispatcher;
    this.calls = context.calls;
    this.outbound = context.outbound;
    this.log = context.log;
  }

  /** One message as the ROUTER socket delivers it: the sender's routing id, then the frames. */
  message(frames: Buffer[]): void {
    const { sessions, registry, outbound, log } = this;
    const routingId = frames[0];
    const key = this.context.socket()?.routingKey(routingId) ?? routingId.toString("latin1");
    const session = sessions.get(key);
    if (session?.role === "dealer") registry.heard(session.dealer);
    // Frames over 1 MiB come as FrameParts (service-router.ts): binary frames are forwarded as
    // they are, but a payload may go to the task layer, so it is made whole. (A header that
    // large is refused by decodeMessage as not a byte array.)
    const payload = frames[4] as Buffer | FrameParts | undefined;
    if (payload instanceof FrameParts) frames[4] = payload.toBuffer();
    for (let i = 5; i < frames.length; i++) {
      const frame = frames[i] as Buffer | FrameParts;
      if (frame instanceof FrameParts) this.collectHint.note(frame.byteLength);
    }
    const message = decodeMessage(frames.slice(1), "router");
    if (!message.ok) {
      log.warn(`bad message from ${describePeer(routingId, session)}: ${message.error.message}`);
      // Kinds a client waits on by id get the error with it (a bad SUBMIT or TASK header too).
      const kind = message.kind;
      const id = kind === "REQUEST" || kind === "INFO" || kind === "SUBMIT" || kind === "TASK" ? message.id : undefined;
      outbound.error(routingId, id, errorToWire(message.error));
      return;
    }
    switch (message.kind) {
      case "HELLO":
        return sessions.hello(routingId, key, session, message.header);
      case "BEAT":
        return this.beat(key, message.header.token, routingId);
      case "REQUEST": {
        const client = sessions.clientFor(routingId, key, session, message.kind, message.header.id);
        if (client) this.request(client, message.header, message.payload, message.binary);
        return;
      }
      case "INFO": {
        const client = sessions.clientFor(routingId, key, session, message.kind, message.header.id);
        if (client) this.info(client, message.header.id, message.header.topic);
        return;
      }
      case "CANCEL": {
        const client = sessions.clientFor(routingId, key, session, message.kind, message.header.id);
        if (client) this.cancel(client, message.header.id);
        return;
      }
      case "CREDIT": {
        const client = sessions.clientFor(routingId, key, session, message.kind, message.header.id);
        if (client) this.credit(client, message.header.id, message.header.n);
        return;
      }
      case "DRAIN": {
        // A dealer drains itself ({}); a client drains a dealer by id (an operator's drain).
        const { id, dealerId } = message.header;
        if (id === undefined || dealerId === undefined || session?.role === "dealer") break;
        const client = sessions.clientFor(routingId, key, session, message.kind, id);
        if (!client) return;
        if (this.drainDealer(dealerId)) client.answer(id, encoder.encode(JSON.stringify({ dealerId, draining: true })));
        else
          client.answerError(
            id,
            errorToWire(new ValidationError(`no registered dealer has the id ${dealerId}`, { data: { path: "dealerId", dealerId } })),
          );
        return;
      }
      case "SUBMIT":
      case "FLOW":
      case "TASK": {
        const client = sessions.clientFor(routingId, key, session, message.kind, message.header.id);
        if (!client) return;
        const extension = this.context.extension();
        if (extension) extension.message(client, message);
        else
          client.answerError(
            message.header.id,
            errorToWire(new ProtocolError("this router does not serve tasks", { data: { reason: ProtocolFailure.UNEXPECTED_KIND } })),
          );
        return;
      }
    }
    // What is left comes from dealers only.
    if (session?.role !== "dealer") {
      outbound.protocolError(
        routingId,
        describePeer(routingId, session),
        ProtocolFailure.NOT_REGISTERED,
        `${message.kind} from a connection that is not a registered dealer`,
      );
      return;
    }
    return this.fromDealer(key, session.dealer, message);
  }

  /**
   * A message over the router's maxMessageSize, skipped as it arrived (the socket never held
   * it): `leading` are its frames that came before the bound was passed. A client's REQUEST (or
   * SUBMIT) is answered with a VALIDATION_ERROR for that id; a dealer's RESULT fails its call
   * and frees the slot, a CHUNK fails its stream; anything else gets an ERROR without id. The
   * connection and every other call on it carry on.
   */
  oversize(routingId: Buffer, leading: Buffer[], size: number, limit: number): void {
    const key = this.context.socket()?.routingKey(routingId) ?? routingId.toString("latin1");
    const session = this.sessions.get(key);
    const { kind, id } = peekMessage(leading);
    const who = describePeer(routingId, session);
    const what = kind === "REQUEST" || kind === "SUBMIT" ? "args" : kind === "RESULT" ? "result" : kind === "CHUNK" ? "chunk" : "message";
    const text = `the ${kind ?? "message"} is ${size} bytes, more than this router accepts in one message (maxMessageSize ${limit} bytes)`;
    const error = new ValidationError(text, { data: { path: what, size, limit } });
    this.log.warn(`discarded a message from ${who}: ${text}`);
    if (session?.role === "dealer" && id !== undefined && (kind === "RESULT" || kind === "CHUNK")) {
      this.registry.heard(session.dealer);
      // A RESULT ends the call as an ERROR from its dealer would; after a CHUNK the dealer goes on
      // streaming, so the call fails and the dealer is told to stop (CANCEL).
      if (kind === "RESULT") return this.reply(session.dealer, id, { kind: "ERROR", header: { id, ...errorToWire(error) } });
      const call = session.dealer.inFlight.get(id);
      if (call?.state === "running") this.calls.finished(call, error);
      return;
    }
    if (id !== undefined && (kind === "REQUEST" || kind === "SUBMIT")) {
      // As for any request: a dealer may not send one, and with client keys only a welcomed client.
      if (this.sessions.clientFor(routingId, key, session, kind, id) === undefined) return;
      return this.outbound.error(routingId, id, errorToWire(error));
    }
    this.outbound.error(routingId, undefined, errorToWire(error));
  }

  /**
   * See DealerRegistry.beat; the dealer's own connection counts as alive too, and a BEAT with a
   * known token is how a heartbeat connection meets the HELLO deadline. Its routing id is where a
   * TERMINATE for that dealer goes.
   */
  private beat(key: string, token: string, from: Buffer): void {
    const dealer = this.registry.beat(token, from);
    if (dealer === undefined) return;
    this.context.hello()?.met(key);
    this.context.socket()?.noteAlive(dealer.routingId);
  }

  // ---- from clients ----

  private request(client: ClientSession, header: ClientRequestHeader, args: Uint8Array, binary: Uint8Array[] | undefined): void {
    const { calls, outbound } = this;
    if (client.outstanding.has(header.id)) {
      outbound.protocolError(
        client.routingId,
        describePeer(client.routingId, { role: "client", client }),
        ProtocolFailure.DUPLICATE_ID,
        `request id ${header.id} is still outstanding`,
        { id: header.id },
      );
      return;
    }
    const method = header.method;
    const timeoutMs = header.timeoutMs ?? this.context.defaultTimeoutMs;
    const call = calls.received(client, header, args, this.context.maxRedispatch, timeoutMs);
    call.binary = binaryOf(header.binary, binary);
    if (header.require !== undefined) call.require = normalizeRequirement(header.require);
    if (header.trace !== undefined) call.trace = header.trace;
    client.outstanding.set(header.id, call);
    if (this.context.isStopping()) return calls.finished(call, new ShuttingDownError("the router is stopping"));
    const dealers = this.registry.offering(method);
    if (!dealers || dealers.size === 0) {
      if (!call.waitForDealer) return calls.finished(call, noSuchMethod(method, call.require));
    } else {
      if (call.require !== undefined && !call.waitForDealer && !this.registry.offeredWith(method, call.require))
        return calls.finished(call, noSuchMethod(method, call.require));
      const info = dealers.values().next().value!.methods.get(method)!;
      if (info.stream !== call.stream) {
        return calls.finished(
          call,
          new ValidationError(
            `${method} is ${info.stream ? "a streaming" : "a unary"} method: call it with ${info.stream ? "stream()" : "invoke()"}`,
            {
              data: { path: "stream" },
            },
          ),
        );
      }
    }
    if (timeoutMs !== undefined) call.timer = this.context.deadlines.add(timeoutMs, () => this.timedOut(call, timeoutMs));
    this.dispatcher.admit(call);
  }

  /**
   * An operator's drain: the dealer with router id `dealerId` gets no new calls from now on and
   * is told (DRAIN) to finish what it runs and leave. False for an id no registered dealer has.
   */
  drainDealer(dealerId: string): boolean {
    const dealer = this.registry.byId(dealerId);
    if (dealer === undefined) return false;
    if (!dealer.draining) this.registry.drain(dealer);
    this.outbound.drain(dealer.routingId);
    return true;
  }

  private info(client: ClientSession, id: number, topic: string): void {
    if (client.outstanding.has(id)) {
      this.outbound.protocolError(
        client.routingId,
        describePeer(client.routingId, { role: "client", client }),
        ProtocolFailure.DUPLICATE_ID,
        `request id ${id} is still outstanding`,
        { id },
      );
      return;
    }
    this.outbound.infoResult(client.routingId, id, this.context.info.topic(topic));
  }

  private cancel(client: ClientSession, id: number): void {
    const call = client.outstanding.get(id);
    if (!call) {
      this.context.extension()?.cancel(client, id);
      return;
    }
    this.calls.finished(call, new CancelledError("cancelled by the client"));
  }

  /**
   * A call owned by the layer above (a task's attempt): checked and admitted like a client's
   * REQUEST, but never re-dispatched by the router (its owner decides about another attempt).
   */
  owned(sink: ReplySink, request: OwnedCallRequest): Call {
    const { calls } = this.context;
    const call = calls.received(sink, { id: 0, method: request.method }, request.args, 0, request.timeoutMs);
    call.task = request.task;
    call.require = normalizeRequirement(request.require);
    if (request.trace !== undefined) call.trace = request.trace;
    if (this.context.isStopping()) {
      calls.finished(call, new ShuttingDownError("the router is stopping"));
      return call;
    }
    const timeoutMs = request.timeoutMs;
    if (timeoutMs !== undefined) call.timer = this.context.deadlines.add(timeoutMs, () => this.timedOut(call, timeoutMs));
    this.context.dispatcher.admit(call);
    return call;
  }

  /**
   * Its owner gives up on an owned call and wants it stopped for sure: CANCEL now, and if the
   * dealer still holds it after `graceMs` (a method that ignores its signal, or one that never
   * yields), TERMINATE to the dealer's heartbeat connection, whose thread ends the process. A
   * dealer whose heartbeat connection has not been heard from yet is told once it is (its next
   * BEAT), within `heartbeatTimeoutMs`; after that the router gives up with a warning.
   */
  terminateOwned(call: Call, graceMs: number, heartbeatTimeoutMs: number): void {
    const dealer = call.dealer as RegisteredDealer | null;
    this.abandonOwned(call);
    if (dealer === null) return;
    const routerId = call.routerId;
    const giveUpAt = Date.now() + graceMs + heartbeatTimeoutMs;
    const check = () => {
      if (dealer.inFlight.get(routerId) !== call) return;
      const to = dealer.beatRoutingId;
      if (to === undefined) {
        if (Date.now() < giveUpAt) setTimeout(check, 50).unref?.();
        else
          this.context.log.warn(
            `dealer ${dealer.id} still runs a revoked ${call.method}, and has no heartbeat connection to terminate it through`,
          );
        return;
      }
      this.context.log.warn(`dealer ${dealer.id} did not stop ${call.method} within ${graceMs} ms of its cancel: terminating its process`);
      this.context.outbound.terminate(to, dealer.beatToken, `${call.method} was revoked with terminate`);
    };
    setTimeout(check, graceMs).unref?.();
  }

  /** Its owner gives up on an owned call: it leaves the queue, or its dealer gets CANCEL. */
  abandonOwned(call: Call): void {
    if (this.context.calls.can(call, "finished") && call.state !== "done") {
      this.context.calls.finished(call, new CancelledError("the task was revoked"));
    }
  }

  private credit(client: ClientSession, id: number, n: number): void {
    const call = client.outstanding.get(id);
    if (!call?.stream || call.credit === undefined) return;
    if (call.state === "queued") {
      call.credit = Math.min(2_147_483_647, call.credit + n);
      return;
    }
    if (call.state === "running" && call.dealer) this.outbound.credit(call.dealer.routingId, call.routerId, n);
  }

  private timedOut(call: Call, timeoutMs: number): void {
    call.timer = undefined;
    if (call.state !== "queued" && call.state !== "running") return;
    this.calls.finished(call, new TimeoutError(`${call.method} did not finish within ${timeoutMs} ms`, { data: { timeoutMs } }));
  }

  // ---- from dealers ----

  private fromDealer(key: string, dealer: RegisteredDealer, message: DealerMessage): void {
    switch (message.kind) {
      case "DRAIN":
        return this.registry.drain(dealer);
      case "READY":
        this.registry.ready(dealer);
        return this.dispatcher.serveDealer(dealer);
      case "BYE":
        return this.sessions.unregistered(key, dealer);
      case "ERROR":
        if (message.header.id === undefined) {
          this.log.warn(`dealer ${dealer.id} reported: ${message.header.message}`);
          return;
        }
        return this.reply(dealer, message.header.id, message);
      case "RESULT":
      case "CHUNK":
      case "END":
        return this.reply(dealer, message.header.id, message);
      case "PROGRESS": {
        // Only for an attempt of a task that is still running; anything else is dropped.
        const call = dealer.inFlight.get(message.header.id);
        if (call?.state === "running" && call.task !== undefined) call.sink.progress?.(call, message.header.value);
        return;
      }
      default:
        return;
    }
  }

  private reply(
    dealer: RegisteredDealer,
    routerId: number,
    message: Extract<DealerMessage, { kind: "RESULT" | "CHUNK" | "END" | "ERROR" }>,
  ): void {
    const { calls } = this;
    const call = dealer.inFlight.get(routerId);
    if (!call) {
      // Not a call this dealer holds: a reply sent before a reconnection, or a spoof. (A late
      // reply after a cancel is still held: the slot stays taken until it comes.)
      this.log.warn(`dropped a ${message.kind} from dealer ${dealer.id} for request ${routerId}, which it does not hold`);
      return;
    }
    if (
      message.kind === "ERROR" &&
      isNotStarted(message.header) &&
      call.state === "running" &&
      !call.forwarded &&
      !this.context.isStopping()
    ) {
      // A draining dealer refused a request that crossed its DRAIN: it never ran, so it waits for
      // another dealer in its old place in line, without using one of its redispatches.
      this.log.info(`dealer ${dealer.id} is draining and did not start ${call.method}; it goes to another dealer`);
      return this.dispatcher.requeue(call);
    }
    if (message.kind === "CHUNK") {
      if (call.state !== "running") return;
      if (!call.stream) return this.brokeProtocol(dealer, call, ProtocolFailure.UNEXPECTED_KIND, "CHUNK for a unary request");
      return calls.forwarded(call, message.header.seq, message.payload, binaryOf(message.header.binary, message.binary));
    }
    // Terminal: the slot is free whatever became of the call's client.
    if (message.kind === "ERROR") dealer.failed++;
    else dealer.succeeded++;
    if (call.state === "running") calls.completed(call, message);
    else calls.released(call);
    this.dispatcher.serveDealer(dealer);
  }

  private brokeProtocol(dealer: RegisteredDealer, call: Call, reason: string, text: string): void {
    this.log.warn(`dealer ${dealer.id} broke the protocol: ${text}; the request fails`);
    this.outbound.error(dealer.routingId, undefined, errorToWire(new ProtocolError(text, { data: { reason } })));
    this.calls.finished(call, new ProtocolError(`dealer ${dealer.id}: ${text}`, { data: { reason } }));
  }
}

/** A dealer's ERROR saying it refused the request without running any of it (PROTOCOL.md §4.12). */
function isNotStarted(header: ErrorHeader): boolean {
  const data = header.data;
  return typeof data === "object" && data !== null && "notStarted" in data && data.notStarted === true;
}
