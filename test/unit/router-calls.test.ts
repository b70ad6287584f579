/** The call table: every transition from every state, allowed or refused, and what each one changes. */
import { describe, expect, test } from "bun:test";
import { CancelledError, DealerLostError, TimeoutError } from "../../src/protocol/index.ts";
import { CALL_TRANSITIONS, type Call, type CallState, CallTransitionError, type CallTransition } from "../../src/router/calls.ts";
import { routerParts } from "../helpers/router-parts.ts";

const STATES: CallState[] = ["received", "queued", "running", "orphaned", "done"];
const TRANSITIONS = Object.keys(CALL_TRANSITIONS) as CallTransition[];

/** Fresh parts with one call brought to `state` the way the router gets there. */
function callIn(state: CallState) {
  const parts = routerParts();
  const dealer = parts.addDealer("Echo", ["Echo.ping"], 1);
  const call = parts.receive("Echo.ping");
  if (state === "queued") parts.calls.queued(call, false);
  if (state === "running" || state === "orphaned") parts.calls.dispatched(call, dealer);
  if (state === "orphaned") parts.calls.finished(call, new CancelledError("cancelled by the client"));
  if (state === "done") parts.calls.finished(call, new CancelledError("cancelled by the client"));
  expect(call.state).toBe(state);
  return { ...parts, dealer, call };
}

function apply(parts: ReturnType<typeof callIn>, transition: CallTransition): void {
  const { calls, call, dealer } = parts;
  switch (transition) {
    case "queued":
      return calls.queued(call, call.state === "running");
    case "dispatched":
      // The dispatcher takes a queued call off its line before it dispatches it.
      if (call.state === "queued") parts.queues.of(call.method).take();
      return calls.dispatched(call, dealer);
    case "forwarded":
      return calls.forwarded(call, 0, new Uint8Array([0x31]));
    case "completed":
      return calls.completed(call, { kind: "RESULT", payload: new Uint8Array([0x31]) });
    case "finished":
      return calls.finished(call, new TimeoutError("too slow"));
    case "lost":
      return calls.lost(call, new DealerLostError("gone"));
    case "abandoned":
      return calls.abandoned(call, "client disconnected");
    case "released":
      return calls.released(call);
  }
}

describe("the call table allows exactly the moves CALL_TRANSITIONS lists", () => {
  for (const transition of TRANSITIONS) {
    for (const from of STATES) {
      const to = (CALL_TRANSITIONS[transition] as Partial<Record<CallState, CallState>>)[from];
      if (to !== undefined) {
        test(`${transition}: ${from} → ${to}`, () => {
          const parts = callIn(from);
          expect(parts.calls.can(parts.call, transition)).toBe(true);
          apply(parts, transition);
          expect(parts.call.state).toBe(to);
        });
      } else {
        test(`${transition} from ${from} is refused and changes nothing`, () => {
          const parts = callIn(from);
          expect(parts.calls.can(parts.call, transition)).toBe(false);
          const sentBefore = parts.outbound.sent.length;
          const repliesBefore = parts.sink.replies.length;
          expect(() => apply(parts, transition)).toThrow(CallTransitionError);
          expect(parts.call.state).toBe(from);
          expect(parts.outbound.sent.length).toBe(sentBefore);
          expect(parts.sink.replies.length).toBe(repliesBefore);
        });
      }
    }
  }
});

describe("what each transition changes", () => {
  test("dispatched: a REQUEST under a fresh router id, one slot of the dealer taken", () => {
    const { calls, call, dealer, outbound } = callIn("received");
    calls.dispatched(call, dealer);
    expect(outbound.requests()).toEqual([
      { kind: "REQUEST", to: "Echo", id: call.routerId, method: "Echo.ping", stream: false, credit: undefined },
    ]);
    expect(dealer.inFlight.get(call.routerId)).toBe(call);
    expect(calls.onDealers.get(call.routerId)).toBe(call);
    expect(dealer.dispatched).toBe(1);
  });

  test("finished while running: the client gets the error, the dealer a CANCEL, and the slot stays taken until the dealer answers", () => {
    const { calls, call, dealer, outbound, sink } = callIn("running");
    outbound.take();
    calls.finished(call, new CancelledError("cancelled by the client"));
    expect(sink.replies).toEqual([{ clientId: call.clientId, kind: "ERROR", code: "CANCELLED" }]);
    expect(outbound.sent).toEqual([{ kind: "CANCEL", to: "Echo", id: call.routerId }]);
    expect(dealer.load).toBe(1);
    calls.released(call);
    expect(dealer.load).toBe(0);
    expect(calls.onDealers.size).toBe(0);
    expect(sink.replies.length).toBe(1);
  });

  test("completed: the sink gets the result once, the slot is free, the timer is cancelled", () => {
    const { calls, call, dealer, sink } = callIn("running");
    let fired = false;
    call.timer = { at: 0, cancel: () => (fired = true) };
    calls.completed(call, { kind: "RESULT", payload: new Uint8Array([0x31]) });
    expect(sink.replies).toEqual([{ clientId: call.clientId, kind: "RESULT" }]);
    expect(dealer.load).toBe(0);
    expect(fired).toBe(true);
    expect(call.outcome).toBe("RESULT");
    expect(calls.totalResponses).toBe(1);
  });

  test("forwarded: the chunk reaches the sink and the call may no longer be re-dispatched", () => {
    const { calls, call, sink } = callIn("running");
    calls.forwarded(call, 0, new Uint8Array([0x31]));
    expect(call.forwarded).toBe(true);
    expect(sink.replies).toEqual([{ clientId: call.clientId, kind: "CHUNK" }]);
  });

  test("abandoned: nothing goes to the sink; a running call is cancelled on its dealer", () => {
    const { calls, call, outbound, sink } = callIn("running");
    outbound.take();
    calls.abandoned(call, "client disconnected");
    expect(sink.replies).toEqual([]);
    expect(outbound.sent).toEqual([{ kind: "CANCEL", to: "Echo", id: call.routerId }]);
    expect(call.state).toBe("orphaned");
  });

  test("lost: DEALER_LOST to the sink, off the dealer, no CANCEL to a dealer that is gone", () => {
    const { calls, call, dealer, outbound, sink } = callIn("running");
    outbound.take();
    calls.lost(call, new DealerLostError("gone"));
    expect(sink.replies).toEqual([{ clientId: call.clientId, kind: "ERROR", code: "DEALER_LOST" }]);
    expect(outbound.sent).toEqual([]);
    expect(dealer.load).toBe(0);
  });

  test("events: call.queued, call.dispatched and call.finished carry the call itself", () => {
    const parts = routerParts();
    const seen: string[] = [];
    const record = (name: string) => (call: { clientId: number; outcome: string | undefined }) =>
      seen.push(`${name} ${call.clientId} ${call.outcome ?? "-"}`);
    parts.events.on("call.queued", record("queued"));
    parts.events.on("call.dispatched", record("dispatched"));
    const off = parts.events.on("call.finished", record("finished"));
    const first: Call = parts.submit("Echo.ping", { waitForDealer: true });
    parts.addDealer("Echo", ["Echo.ping"], 1);
    parts.answer(first);
    off();
    parts.answer(parts.submit("Echo.ping"));
    expect(seen).toEqual(["queued 1 -", "dispatched 1 -", "finished 1 RESULT", "dispatched 2 -"]);
  });
});
