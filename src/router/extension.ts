/**
 * Owns the seam between the router and a layer above it that serves client requests which are
 * not calls (SUBMIT, FLOW and TASK: the task layer, src/tasks/). The router never imports that layer:
 * the layer attaches itself through this interface and owns its calls through a ReplySink.
 */
import type { FlowHeader, SubmitHeader, TaskHeader, WireError } from "../protocol/index.ts";

/** A client connection as the extension answers it (a ClientSession), by the client's request ids. */
export interface ClientAnswers {
  answer(id: number, payload: Uint8Array): void;
  answerChunk(id: number, seq: number, payload: Uint8Array): void;
  answerEnd(id: number, count: number): void;
  answerError(id: number, error: WireError): void;
}

/** A client request the router hands to the extension. */
export type ExtensionMessage =
  | { kind: "SUBMIT"; header: SubmitHeader; payload: Uint8Array }
  | { kind: "FLOW"; header: FlowHeader; payload: Uint8Array }
  | { kind: "TASK"; header: TaskHeader };

export interface ClientExtension {
  /** A SUBMIT or TASK from an authenticated client; answered through the session's `answer*` methods. */
  message(client: ClientAnswers, message: ExtensionMessage): void;
  /** CANCEL for an id that is none of the client's calls (a watch, a wait). */
  cancel(client: ClientAnswers, id: number): void;
  /** The client's connection is gone. */
  gone(client: ClientAnswers): void;
}

/** What a layer above passes to run a call it owns (a task's attempt). */
export interface OwnedCallRequest {
  method: string;
  /** The encoded JSON argument array. */
  args: Uint8Array;
  /** The attempt's time limit; the call then fails with TIMEOUT on its dealer and for its owner. */
  timeoutMs?: number;
  task: { id: string; attempt: number };
  /** Tags its dealer must have (the task's `require`). */
  require?: Readonly<Record<string, string>>;
  /** The task's W3C trace context, forwarded to the dealer. */
  trace?: { traceparent: string; tracestate?: string };
}
