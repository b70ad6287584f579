/**
 * Owns the in-memory call: one client request from its arrival to its end, and the call table,
 * the only code that changes a call's state. Each transition is one method (queued, dispatched,
 * forwarded, completed, finished, lost, abandoned, released) that keeps every structure that
 * holds the call consistent: its method's queue count, its dealer's slots, the calls on dealers,
 * its timer, its reply sink. `CALL_TRANSITIONS` lists the allowed moves; anything else throws.
 *
 * ("Call" is the router's in-memory attempt; "task" is kept for durable work above the router.)
 */
import type { Buffer } from "node:buffer";
import {
  type BinaryFrames,
  type BinarySlot,
  type ErrorHeader,
  errorToWire,
  type TraceContext,
  type VoidRailError,
  type WireError,
} from "../protocol/index.ts";
import type { Deadline } from "../util/deadlines.ts";
import type { Logger } from "../util/log.ts";
import type { RouterEvents } from "./events.ts";
import type { OutboundPort } from "./outbound.ts";
import type { Queues } from "./queues.ts";

/**
 * - received: being checked, not yet in a queue or on a dealer (a refusal then touches no queue)
 * - queued: waiting in its method's queue
 * - running: on a dealer, its client waiting for the reply
 * - orphaned: still on a dealer (which keeps the slot until its terminal message), but already
 *   ended for its client: cancelled, timed out, or the client left
 * - done: nothing holds it any more
 */
export type CallState = "received" | "queued" | "running" | "orphaned" | "done";

/** Each transition: the states it leaves from, and where each one goes. */
export const CALL_TRANSITIONS = {
  /** Waits in its method's queue: a new call, or a running one whose dealer was lost (re-dispatch). */
  queued: { received: "queued", running: "queued" },
  /** Sent to a dealer with a free slot. */
  dispatched: { received: "running", queued: "running" },
  /** A CHUNK reached its client: from now on it cannot be run again elsewhere. */
  forwarded: { running: "running" },
  /** Its dealer's terminal reply (RESULT, END or ERROR) reached its client. */
  completed: { running: "done" },
  /**
   * The router ended it with an error (refused, cancelled, timed out, queue full, stopping). A
   * running one is cancelled on its dealer and stays there, orphaned, until the dealer answers.
   */
  finished: { received: "done", queued: "done", running: "orphaned" },
  /** Its dealer was lost and it is not run again: its client gets DEALER_LOST. */
  lost: { running: "done" },
  /** Its client left: nothing more goes to it; a running one is cancelled on its dealer. */
  abandoned: { received: "done", queued: "done", running: "orphaned" },
  /** Its dealer no longer holds an orphan: the terminal reply came, or the dealer was lost. */
  released: { orphaned: "done" },
} as const satisfies Record<string, Partial<Record<CallState, CallState>>>;

export type CallTransition = keyof typeof CALL_TRANSITIONS;

/** A transition a call's state does not allow: always a bug in the router, never the peer's doing. */
export class CallTransitionError extends Error {
  override readonly name = "CallTransitionError";
  constructor(
    readonly transition: CallTransition,
    readonly from: CallState,
  ) {
    super(`call transition ${transition} is not allowed from state ${from}`);
  }
}

/**
 * Where a call's replies go: the client connection that asked, or (later) a durable task that
 * owns the attempt. A sink is told each chunk and exactly one terminal reply.
 */
export interface ReplySink {
  chunk(call: Call, seq: number, payload: Uint8Array, binary?: BinaryFrames): void;
  result(call: Call, payload: Uint8Array, binary?: BinaryFrames): void;
  end(call: Call, count: number): void;
  error(call: Call, error: WireError): void;
  /** The dealer reported progress of a task attempt (PROGRESS); only owners of attempts listen. */
  progress?(call: Call, value: unknown): void;
}

/** The sink of a call whose end nobody waits for any more. */
export const NOWHERE: ReplySink = { chunk() {}, result() {}, end() {}, error() {} };

/** What a call needs of the dealer running it: where to send, and its slots. */
export interface CallHost {
  readonly id: string;
  readonly routingId: Buffer;
  /** Calls on it by router id, orphans included: each holds one slot. */
  readonly inFlight: Map<number, Call>;
  dispatched: number;
  /** Monotonic number of its last dispatch (0 = never): strategies rotate by it. */
  lastDispatch: number;
}

/** A dealer's terminal reply, as decoded. */
export type TerminalReply =
  | { kind: "RESULT"; payload: Uint8Array; header?: { binary?: BinarySlot[] }; binary?: Uint8Array[] }
  | { kind: "END"; header: { count: number } }
  | { kind: "ERROR"; header: ErrorHeader };

export class Call {
  state: CallState = "received";
  credit: number | undefined;
  redispatchesLeft: number;
  timer: Deadline | undefined = undefined;
  /** Its id on its dealer; a fresh one at every dispatch. */
  routerId = 0;
  dealer: CallHost | null = null;
  /** A CHUNK reached the client: the call can no longer be run again. */
  forwarded = false;
  /** How it ended for its client: "RESULT", "END" or an error code. */
  outcome: string | undefined = undefined;
  /** The arguments' binary frames, forwarded to the dealer as they came. */
  binary: BinaryFrames | undefined = undefined;
  /** Set when the call is an attempt of a background task (its REQUEST tells the dealer). */
  task: { readonly id: string; readonly attempt: number } | undefined = undefined;
  /** Tags its dealer must have (REQUEST `require`); undefined: any dealer offering the method. */
  require: Readonly<Record<string, string>> | undefined = undefined;
  /** The caller's W3C trace context, forwarded to the dealer as it came. */
  trace: TraceContext | undefined = undefined;
  /** performance.now() at arrival: metrics read durations and queue ages from it. */
  readonly receivedAt = performance.now();

  constructor(
    /** Arrival order across all methods: FIFO is by this number. */
    readonly seq: number,
    public sink: ReplySink,
    /** The id its client gave it. */
    readonly clientId: number,
    readonly method: string,
    readonly stream: boolean,
    readonly args: Uint8Array,
    credit: number | undefined,
    readonly waitForDealer: boolean,
    redispatchesLeft: number,
    /** Epoch ms by which it must end, if it has a timeout. */
    readonly deadline: number | undefined,
  ) {
    this.credit = credit;
    this.redispatchesLeft = redispatchesLeft;
  }
}

/** What a new call is made of (a REQUEST's header, checked). */
export interface CallRequest {
  id: number;
  method: string;
  stream?: boolean;
  credit?: number;
  waitForDealer?: boolean;
}

export class CallTable {
  /** Calls on dealers (running or orphaned), by router id. */
  readonly onDealers = new Map<number, Call>();
  /** Requests accepted since start. */
  totalRequests = 0;
  /** Terminal replies sent to clients since start. */
  totalResponses = 0;
  private nextSeq = 1;
  /**
   * Router ids continue from the clock (ms × 1024), not from 1: a dealer may still answer a
   * request of a previous router on this address after reconnecting, and that late answer must not
   * match a request of this one. Ids stay below 2^53 until the year 2248 and never catch up with a
   * later restart's start unless a router dispatches over a million requests a second for its life.
   */
  private nextRouterId = Date.now() * 1024;
  private dispatchCounter = 0;

  constructor(
    private readonly queues: Queues<Call>,
    private readonly outbound: OutboundPort,
    private readonly events: RouterEvents,
    private readonly log: Logger,
  ) {}

  /** A new call in state received, counted as a request. */
  received(sink: ReplySink, request: CallRequest, args: Uint8Array, redispatches: number, timeoutMs: number | undefined): Call {
    this.totalRequests++;
    return new Call(
      this.nextSeq++,
      sink,
      request.id,
      request.method,
      request.stream ?? false,
      args,
      request.credit,
      request.waitForDealer ?? false,
      redispatches,
      timeoutMs !== undefined ? Date.now() + timeoutMs : undefined,
    );
  }

  /** Whether `transition` is allowed from the call's state now. */
  can(call: Call, transition: CallTransition): boolean {
    return (CALL_TRANSITIONS[transition] as Partial<Record<CallState, CallState>>)[call.state] !== undefined;
  }

  /** Into its method's queue: at the back, or at the front for one re-queued after a lost dealer. */
  queued(call: Call, atFront: boolean): void {
    const to = this.move(call, "queued");
    if (call.state === "running") this.offDealer(call);
    call.state = to;
    this.queues.of(call.method).push(call, atFront);
    this.events.emit("call.queued", call);
  }

  /** Onto `dealer`, under a fresh router id. A queued call has been taken off its queue already. */
  dispatched(call: Call, dealer: CallHost): void {
    call.state = this.move(call, "dispatched");
    call.dealer = dealer;
    const routerId = this.nextRouterId++;
    call.routerId = routerId;
    dealer.inFlight.set(routerId, call);
    dealer.dispatched++;
    dealer.lastDispatch = ++this.dispatchCounter;
    this.onDealers.set(routerId, call);
    this.outbound.request(
      dealer.routingId,
      routerId,
      call.method,
      call.stream,
      call.credit,
      call.deadline,
      call.args,
      call.task,
      call.binary,
      call.trace,
    );
    this.events.emit("call.dispatched", call);
  }

  /** A CHUNK from its dealer, passed to its sink (with its binary frames, if any). */
  forwarded(call: Call, seq: number, payload: Uint8Array, binary?: BinaryFrames): void {
    call.state = this.move(call, "forwarded");
    call.forwarded = true;
    call.sink.chunk(call, seq, payload, binary);
  }

  /** Its dealer's terminal reply, passed to its sink; the dealer's slot is free. */
  completed(call: Call, reply: TerminalReply): void {
    const to = this.move(call, "completed");
    this.offDealer(call);
    call.state = to;
    this.clearTimer(call);
    this.totalResponses++;
    const sink = call.sink;
    switch (reply.kind) {
      case "RESULT":
        call.outcome = "RESULT";
        sink.result(call, reply.payload, binaryOf(reply.header?.binary, reply.binary));
        break;
      case "END":
        call.outcome = "END";
        sink.end(call, reply.header.count);
        break;
      case "ERROR":
        call.outcome = reply.header.code;
        sink.error(call, reply.header);
        break;
    }
    this.events.emit("call.finished", call);
  }

  /**
   * Ends the call for its sink with `error`. A running call is cancelled on its dealer, which
   * keeps the slot until it sends its terminal message.
   */
  finished(call: Call, error: VoidRailError): void {
    const to = this.move(call, "finished");
    this.leave(call);
    this.failFor(call, to, error);
  }

  /** Its dealer is gone and it runs nowhere else: its sink gets `error` (DEALER_LOST). */
  lost(call: Call, error: VoidRailError): void {
    const to = this.move(call, "lost");
    this.offDealer(call);
    this.failFor(call, to, error);
  }

  /** The end both refusals share: state `to`, no timer, `error` to the sink, which is then let go. */
  private failFor(call: Call, to: CallState, error: VoidRailError): void {
    call.state = to;
    this.clearTimer(call);
    this.totalResponses++;
    call.outcome = error.code;
    const sink = call.sink;
    call.sink = NOWHERE;
    sink.error(call, errorToWire(error));
    this.events.emit("call.finished", call);
  }

  /** Its sink is gone: nothing more is sent to it; a running call is cancelled on its dealer. */
  abandoned(call: Call, why: string): void {
    const to = this.move(call, "abandoned");
    this.leave(call);
    call.state = to;
    this.clearTimer(call);
    call.sink = NOWHERE;
    this.log.debug?.(`dropped ${call.method} (${why})`);
  }

  /** An orphan's dealer answered or was lost: its slot is free and nothing holds it. */
  released(call: Call): void {
    const to = this.move(call, "released");
    this.offDealer(call);
    call.state = to;
  }

  /** The target state of `transition` from the call's state, or a CallTransitionError. */
  private move<T extends CallTransition>(call: Call, transition: T): CallState {
    const to = (CALL_TRANSITIONS[transition] as Partial<Record<CallState, CallState>>)[call.state];
    if (to === undefined) throw new CallTransitionError(transition, call.state);
    return to;
  }

  /** Stops waiting or running for its client: off the queue's count, or cancelled on its dealer. */
  private leave(call: Call): void {
    if (call.state === "queued") this.queues.of(call.method).forget(call);
    else if (call.state === "running" && call.dealer !== null) this.outbound.cancel(call.dealer.routingId, call.routerId);
  }

  private offDealer(call: Call): void {
    const dealer = call.dealer;
    if (dealer !== null) dealer.inFlight.delete(call.routerId);
    this.onDealers.delete(call.routerId);
    call.dealer = null;
  }

  private clearTimer(call: Call): void {
    call.timer?.cancel();
    call.timer = undefined;
  }
}

/** The binary frames of a reply, or undefined when it has none. */
export function binaryOf(slots: readonly BinarySlot[] | undefined, frames: readonly Uint8Array[] | undefined): BinaryFrames | undefined {
  return slots !== undefined && slots.length > 0 && frames !== undefined ? { slots, frames } : undefined;
}
