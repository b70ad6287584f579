/**
 * The router's parts wired as ServiceRouter wires them, without a socket: a fake outbound that
 * records what would be sent, reply sinks that record what their client would get, and a fake
 * clock. For unit tests of calls, queues, dispatch and the registry.
 */
import { Buffer } from "node:buffer";
import type { MethodInfo, WireError } from "../../src/protocol/index.ts";
import { type Call, CallTable, type ReplySink } from "../../src/router/calls.ts";
import { Dispatcher, strategyFor } from "../../src/router/dispatch.ts";
import { RouterEvents } from "../../src/router/events.ts";
import type { OutboundPort } from "../../src/router/outbound.ts";
import { Queues } from "../../src/router/queues.ts";
import { DealerRegistry, type RegisteredDealer } from "../../src/router/registry.ts";
import { silentLogger } from "../../src/util/log.ts";

/** One message the router would have sent. */
export type Sent =
  | { kind: "REQUEST"; to: string; id: number; method: string; stream: boolean; credit: number | undefined }
  | { kind: "CANCEL"; to: string; id: number }
  | { kind: "CREDIT"; to: string; id: number; n: number }
  | {
      kind: "RESULT" | "CHUNK" | "END" | "ERROR" | "WELCOME" | "INFO-RESULT" | "TERMINATE" | "DRAIN";
      to: string;
      id?: number;
      code?: string;
    };

function name(routingId: Buffer): string {
  return routingId.toString("latin1");
}

/** Records instead of sending. `to` is the routing id as text (dealers are named after their service). */
export class FakeOutbound implements OutboundPort {
  readonly sent: Sent[] = [];
  drain(routingId: Buffer): void {
    this.sent.push({ kind: "DRAIN", to: name(routingId) });
  }
  welcome(routingId: Buffer): void {
    this.sent.push({ kind: "WELCOME", to: name(routingId) });
  }
  error(routingId: Buffer, id: number | undefined, wire: WireError): void {
    this.sent.push({ kind: "ERROR", to: name(routingId), id, code: wire.code });
  }
  protocolError(routingId: Buffer, _who: string, reason: string): void {
    this.sent.push({ kind: "ERROR", to: name(routingId), code: `PROTOCOL_ERROR/${reason}` });
  }
  result(routingId: Buffer, id: number): void {
    this.sent.push({ kind: "RESULT", to: name(routingId), id });
  }
  infoResult(routingId: Buffer, id: number): void {
    this.sent.push({ kind: "INFO-RESULT", to: name(routingId), id });
  }
  chunk(routingId: Buffer, id: number): void {
    this.sent.push({ kind: "CHUNK", to: name(routingId), id });
  }
  end(routingId: Buffer, id: number): void {
    this.sent.push({ kind: "END", to: name(routingId), id });
  }
  request(routingId: Buffer, id: number, method: string, stream: boolean, credit: number | undefined): void {
    this.sent.push({ kind: "REQUEST", to: name(routingId), id, method, stream, credit });
  }
  cancel(routingId: Buffer, id: number): void {
    this.sent.push({ kind: "CANCEL", to: name(routingId), id });
  }
  credit(routingId: Buffer, id: number, n: number): void {
    this.sent.push({ kind: "CREDIT", to: name(routingId), id, n });
  }
  terminate(routingId: Buffer): void {
    this.sent.push({ kind: "TERMINATE", to: name(routingId) });
  }
  /** The REQUESTs sent so far, as "dealer:method#clientId" via `calls`. */
  requests(): Extract<Sent, { kind: "REQUEST" }>[] {
    return this.sent.filter((message): message is Extract<Sent, { kind: "REQUEST" }> => message.kind === "REQUEST");
  }
  take(): Sent[] {
    return this.sent.splice(0);
  }
}

/** What a client would receive for its calls. */
export class RecordingSink implements ReplySink {
  readonly replies: { clientId: number; kind: "CHUNK" | "RESULT" | "END" | "ERROR"; code?: string }[] = [];
  chunk(call: Call): void {
    this.replies.push({ clientId: call.clientId, kind: "CHUNK" });
  }
  result(call: Call): void {
    this.replies.push({ clientId: call.clientId, kind: "RESULT" });
  }
  end(call: Call): void {
    this.replies.push({ clientId: call.clientId, kind: "END" });
  }
  error(call: Call, error: WireError): void {
    this.replies.push({ clientId: call.clientId, kind: "ERROR", code: error.code });
  }
}

export interface PartsOptions {
  mode?: "fifo" | "load_balance";
  maxQueueLength?: number;
  queueLimits?: Record<string, number>;
  maxRedispatch?: number;
}

const unary: MethodInfo = { stream: false };

/** The parts, a fake clock (`clock.now`, advanced by hand) and helpers to add dealers and calls. */
export function routerParts(options: PartsOptions = {}) {
  const clock = { now: 1_000_000 };
  const outbound = new FakeOutbound();
  const events = new RouterEvents((_name, error) => {
    throw error;
  });
  const queues = new Queues<Call>(options.maxQueueLength ?? 10_000, options.queueLimits ?? {});
  const calls = new CallTable(queues, outbound, events, silentLogger);
  const strategy = strategyFor(options.mode ?? "fifo");
  const dispatcher = new Dispatcher(strategy, queues, calls);
  const state = { stopping: false };
  const registry = new DealerRegistry(calls, queues, dispatcher, events, silentLogger, {
    defaultMaxConcurrent: strategy.defaultMaxConcurrent,
    isStopping: () => state.stopping,
    now: () => clock.now,
  });
  dispatcher.registry = registry;
  const sink = new RecordingSink();
  let nextClientId = 1;

  /** Registers a dealer whose routing id is `name`, offering `methods`. */
  function addDealer(dealerName: string, methods: string[], maxConcurrent?: number): RegisteredDealer {
    const dealer = registry.register(Buffer.from(dealerName, "latin1"), {
      role: "dealer",
      version: 1,
      service: dealerName,
      methods: Object.fromEntries(methods.map((method) => [method, unary])),
      ...(maxConcurrent === undefined ? {} : { maxConcurrent }),
    });
    dispatcher.serveDealer(dealer);
    return dealer;
  }

  /** A new call for `method`, received but not admitted. */
  function receive(method: string, extra: { stream?: boolean; waitForDealer?: boolean; credit?: number } = {}): Call {
    return calls.received(
      sink,
      { id: nextClientId++, method, ...extra },
      new Uint8Array([0x5b, 0x5d]),
      options.maxRedispatch ?? 1,
      undefined,
    );
  }

  /** A new call for `method`, admitted as a REQUEST would be (dispatched, queued or refused). */
  function submit(method: string, extra: { stream?: boolean; waitForDealer?: boolean } = {}): Call {
    const call = receive(method, extra);
    dispatcher.admit(call);
    return call;
  }

  /** The dealer's RESULT for `call`, as inbound handles it. */
  function answer(call: Call): void {
    const dealer = [...registry.dealers].find((candidate) => candidate.inFlight.get(call.routerId) === call);
    if (!dealer) throw new Error(`call ${call.clientId} is on no dealer`);
    dealer.succeeded++;
    if (call.state === "running") calls.completed(call, { kind: "RESULT", payload: new Uint8Array([0x31]) });
    else calls.released(call);
    dispatcher.serveDealer(dealer);
  }

  return { clock, outbound, events, queues, calls, dispatcher, registry, sink, state, addDealer, receive, submit, answer };
}
