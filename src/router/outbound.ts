/**
 * Owns the router's sending: the only place that encodes VoidRail messages and hands them to the
 * ROUTER socket. One typed method per message the router sends, so no caller builds frames or
 * casts headers, and a send after stop() is dropped here.
 */
import type { Buffer } from "node:buffer";
import {
  type BinaryFrames,
  type BinarySlot,
  type ClientWelcomeHeader,
  type DealerWelcomeHeader,
  encodeJsonOrThrow,
  encodeMessage,
  errorToWire,
  ProtocolError,
  type TraceContext,
  type WireError,
} from "../protocol/index.ts";
import type { Logger } from "../util/log.ts";
import { type Router, SEND_DONE } from "../zmtp/index.ts";

/** The REQUEST a dealer receives; built once per dispatch (the header is the one allocation). */
interface DealerRequest {
  id: number;
  method: string;
  stream?: boolean;
  credit?: number;
  deadlineMs?: number;
  task?: { id: string; attempt: number };
  binary?: BinarySlot[];
  trace?: TraceContext;
}

/** What the rest of the router sends through (a fake in unit tests). */
export type OutboundPort = Pick<Outbound, Exclude<keyof Outbound, "attach">>;

export class Outbound {
  private socket: Router | null = null;

  constructor(private readonly log: Logger) {}

  /** Sends through `socket` from now on; null (at stop) drops everything sent later. */
  attach(socket: Router | null): void {
    this.socket = socket;
  }

  welcome(routingId: Buffer, header: ClientWelcomeHeader | DealerWelcomeHeader): void {
    this.send(routingId, encodeMessage("WELCOME", header));
  }

  /**
   * An ERROR; `id` names the request it ends, or is left out for one about the connection. `wire`
   * may be a dealer's own ERROR header: its id (the router's) is replaced by `id`.
   */
  error(routingId: Buffer, id: number | undefined, wire: WireError): void {
    this.send(routingId, encodeMessage("ERROR", id === undefined ? wire : { ...wire, id }));
  }

  /** Refuses a message that breaks the conversation rules: one log line, one ERROR without id. */
  protocolError(routingId: Buffer, who: string, reason: string, text: string, data: Record<string, unknown> = {}): void {
    this.log.warn(`refused a message from ${who}: ${text}`);
    this.error(routingId, undefined, errorToWire(new ProtocolError(text, { data: { reason, ...data } })));
  }

  result(routingId: Buffer, id: number, payload: Uint8Array, binary?: BinaryFrames): void {
    if (binary === undefined) this.send(routingId, encodeMessage("RESULT", { id }, payload));
    else this.send(routingId, encodeMessage("RESULT", { id, binary: binary.slots as BinarySlot[] }, payload, binary.frames));
  }

  /** An INFO answer: `value` as the RESULT payload. */
  infoResult(routingId: Buffer, id: number, value: unknown): void {
    this.send(routingId, encodeMessage("RESULT", { id }, encodeJsonOrThrow(value)));
  }

  chunk(routingId: Buffer, id: number, seq: number, payload: Uint8Array, binary?: BinaryFrames): void {
    if (binary === undefined) this.send(routingId, encodeMessage("CHUNK", { id, seq }, payload));
    else this.send(routingId, encodeMessage("CHUNK", { id, seq, binary: binary.slots as BinarySlot[] }, payload, binary.frames));
  }

  end(routingId: Buffer, id: number, count: number): void {
    this.send(routingId, encodeMessage("END", { id, count }));
  }

  /** A REQUEST to a dealer; `deadline` (epoch ms) becomes the time it has left. */
  request(
    routingId: Buffer,
    id: number,
    method: string,
    stream: boolean,
    credit: number | undefined,
    deadline: number | undefined,
    args: Uint8Array,
    task?: { id: string; attempt: number },
    binary?: BinaryFrames,
    trace?: TraceContext,
  ): void {
    const header: DealerRequest = { id, method };
    // The caller's trace context goes on as it came: the router is not a hop of the trace.
    if (trace !== undefined) header.trace = trace;
    if (stream) header.stream = true;
    if (credit !== undefined) header.credit = credit;
    if (deadline !== undefined) header.deadlineMs = Math.max(1, deadline - Date.now());
    if (task !== undefined) header.task = { id: task.id, attempt: task.attempt };
    if (binary === undefined) {
      this.send(routingId, encodeMessage("REQUEST", header, args));
      return;
    }
    header.binary = binary.slots as BinarySlot[];
    this.send(routingId, encodeMessage("REQUEST", header, args, binary.frames));
  }

  /** TERMINATE, to a dealer's heartbeat connection. */
  terminate(routingId: Buffer, token: string, reason: string): void {
    this.send(routingId, encodeMessage("TERMINATE", { token, reason }));
  }

  /** DRAIN, to a dealer: finish what you run and leave. */
  drain(routingId: Buffer): void {
    this.send(routingId, encodeMessage("DRAIN", {}));
  }

  cancel(routingId: Buffer, id: number): void {
    this.send(routingId, encodeMessage("CANCEL", { id }));
  }

  credit(routingId: Buffer, id: number, n: number): void {
    this.send(routingId, encodeMessage("CREDIT", { id, n }));
  }

  private send(routingId: Buffer, frames: Uint8Array[]): void {
    const socket = this.socket;
    if (!socket) return;
    frames.unshift(routingId);
    const sent = socket.send(frames);
    if (sent !== SEND_DONE) sent.catch((error: Error) => this.log.warn(`could not send to ${routingId.toString("hex")}: ${error.message}`));
  }
}
