/**
 * The TaskHost over a ServiceRouter: a task's attempt becomes a call the task layer owns through
 * a ReplySink, method defaults come from the dealers' registrations, and the router's
 * `dealer.free` event (after its own queues are served) says when queued tasks may start.
 */
import type { WireError } from "../protocol/index.ts";
import type { Call, ReplySink } from "../router/calls.ts";
import type { ServiceRouter } from "../router/service-router.ts";
import type { AttemptHandle, AttemptRequest, AttemptSink, TaskHost } from "./host.ts";

const BINARY_RESULT: WireError = {
  code: "VALIDATION_ERROR",
  message: "a task's result cannot hold binary values yet (Uint8Array, Buffer, typed arrays): return them from a plain call",
  data: { path: "result" },
};

const NOT_UNARY: WireError = {
  code: "PROTOCOL_ERROR",
  message: "a task's attempt got a stream's answer",
  data: { reason: "UNEXPECTED_KIND" },
};

export class RouterTaskHost implements TaskHost {
  private stopListening: (() => void) | undefined;

  constructor(private readonly router: ServiceRouter) {}

  method(method: string, require?: Readonly<Record<string, string>>) {
    const info = this.router.offeredMethod(method, require);
    return info === undefined ? undefined : { stream: info.stream, taskDefaults: info.task ?? {} };
  }

  freeSlots(method: string): number {
    return this.router.freeSlots(method);
  }

  takeRateToken(method: string): number {
    return this.router.takeRateToken(method);
  }

  startAttempt(request: AttemptRequest, attempt: AttemptSink): AttemptHandle {
    const sink: ReplySink = {
      chunk() {},
      // The store keeps a result as one JSON blob: binary values cannot be kept in a task yet (#12).
      result: (_call, payload, binary) => (binary === undefined ? attempt.result(payload) : attempt.error(BINARY_RESULT, false)),
      end: () => attempt.error(NOT_UNARY, false),
      error: (_call, error) => attempt.error(error, error.code === "DEALER_LOST"),
      progress: (_call, value) => attempt.progress(value),
    };
    const call: Call = this.router.runOwned(
      {
        method: request.method,
        args: request.args,
        ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs } : {}),
        task: { id: request.taskId, attempt: request.attempt },
        ...(request.require !== undefined ? { require: request.require } : {}),
        ...(request.trace !== undefined ? { trace: request.trace } : {}),
      },
      sink,
    );
    return {
      cancel: () => this.router.abandonOwned(call),
      terminate: (graceMs) => this.router.terminateOwned(call, graceMs),
    };
  }

  onCapacity(listener: ((method: string) => void) | undefined): void {
    this.stopListening?.();
    this.stopListening = undefined;
    if (listener === undefined) return;
    // After a registration too: the router serves its own queue first, then says "dealer.free".
    this.stopListening = this.router.events.on("dealer.free", (dealer) => {
      for (const method of dealer.methods.keys()) listener(method);
    });
  }
}
