/**
 * The dealer registry without sockets: liveness bookkeeping on a fake clock, and what removing a
 * dealer does to the calls it held (re-dispatched at most maxRedispatch times, else DEALER_LOST).
 * Deciding that a silent connection is dead is the ZMTP socket's heartbeat; here the registry is
 * told, as the socket's "disconnect" event tells it in the router.
 */
import { describe, expect, test } from "bun:test";
import { routerParts } from "../helpers/router-parts.ts";

describe("liveness", () => {
  test("a dealer is heard from by its messages and by BEATs with its token, on the router's clock", () => {
    const parts = routerParts();
    const dealer = parts.addDealer("A", ["Svc.m"]);
    expect(dealer.lastSeen).toBe(parts.clock.now);
    parts.clock.now += 1500;
    parts.registry.heard(dealer);
    expect(dealer.lastSeen).toBe(parts.clock.now);
    parts.clock.now += 1500;
    expect(parts.registry.beat(dealer.beatToken)).toBe(dealer);
    expect(dealer.lastSeen).toBe(parts.clock.now);
    expect(parts.registry.beat("not-a-token-of-anyone")).toBeUndefined();
  });

  test("a dealer the socket declares dead (silent past the heartbeat timeout) is removed: its token stops counting, its methods are gone", () => {
    const parts = routerParts();
    const lost: string[] = [];
    parts.events.on("dealer.lost", ({ dealer, reason }) => lost.push(`${dealer.id} ${reason}`));
    const dealer = parts.addDealer("A", ["Svc.m"]);
    parts.clock.now += 30_001;
    parts.registry.lost(dealer, "heartbeat timeout");
    expect(lost).toEqual([`${dealer.id} heartbeat timeout`]);
    expect(parts.registry.offering("Svc.m")).toBeUndefined();
    expect(parts.registry.beat(dealer.beatToken)).toBeUndefined();
    expect(parts.registry.dealers.size).toBe(0);
    // Told twice (BYE, then the disconnect): the second time changes nothing.
    parts.registry.lost(dealer, "disconnected");
    expect(lost.length).toBe(1);
  });
});

describe("the calls of a lost dealer", () => {
  test("a running call is re-dispatched to another dealer, at most maxRedispatch times, then fails with DEALER_LOST", () => {
    const parts = routerParts({ maxRedispatch: 2 });
    const dealers = [parts.addDealer("A", ["Svc.m"]), parts.addDealer("B", ["Svc.m"]), parts.addDealer("C", ["Svc.m"])];
    parts.addDealer("D", ["Svc.m"]);
    const call = parts.submit("Svc.m");
    for (const dealer of dealers) parts.registry.lost(dealer, "heartbeat timeout");
    expect(parts.outbound.requests().map((request) => request.to)).toEqual(["A", "B", "C"]);
    expect(parts.sink.replies).toEqual([{ clientId: call.clientId, kind: "ERROR", code: "DEALER_LOST" }]);
    expect(call.state).toBe("done");
  });

  test("a re-dispatched call goes ahead of calls that arrived after it", () => {
    const parts = routerParts();
    const a = parts.addDealer("A", ["Svc.m"]);
    const first = parts.submit("Svc.m", { waitForDealer: true });
    const later = parts.submit("Svc.m", { waitForDealer: true });
    parts.registry.lost(a, "disconnected");
    expect(first.state).toBe("queued");
    expect(parts.queues.of("Svc.m").peek()).toBe(first);
    parts.addDealer("B", ["Svc.m"]);
    expect(first.state).toBe("running");
    expect(later.state).toBe("queued");
  });

  test("a stream that already sent a chunk is not run again", () => {
    const parts = routerParts();
    const a = parts.addDealer("A", ["Svc.m"]);
    parts.addDealer("B", ["Svc.m"]);
    const call = parts.submit("Svc.m");
    parts.calls.forwarded(call, 0, new Uint8Array([0x31]));
    parts.registry.lost(a, "disconnected");
    expect(parts.sink.replies.map((reply) => reply.code ?? reply.kind)).toEqual(["CHUNK", "DEALER_LOST"]);
    expect(parts.outbound.requests().length).toBe(1);
  });

  test("with nobody left to run it, a call fails at once instead of at its timeout; a waitForDealer call keeps waiting", () => {
    const parts = routerParts();
    const a = parts.addDealer("A", ["Svc.m"], 2);
    const plain = parts.submit("Svc.m");
    const patient = parts.submit("Svc.m", { waitForDealer: true });
    parts.registry.lost(a, "disconnected");
    expect(plain.state).toBe("done");
    expect(patient.state).toBe("queued");
    expect(parts.sink.replies).toEqual([{ clientId: plain.clientId, kind: "ERROR", code: "DEALER_LOST" }]);
  });

  test("calls waiting for a method nobody offers any more fail with NO_SUCH_METHOD, unless they wait for a dealer", () => {
    const parts = routerParts();
    const a = parts.addDealer("A", ["Svc.m"]);
    const running = parts.submit("Svc.m");
    const queued = parts.submit("Svc.m");
    const patient = parts.submit("Svc.m", { waitForDealer: true });
    parts.registry.lost(a, "disconnected");
    expect(queued.state).toBe("done");
    expect(parts.sink.replies[0]).toEqual({ clientId: queued.clientId, kind: "ERROR", code: "NO_SUCH_METHOD" });
    // The running call may wait too now that its dealer is gone: re-queued at the head.
    expect(running.state).toBe("done");
    expect(patient.state).toBe("queued");
    expect(parts.queues.count("Svc.m")).toBe(1);
  });

  test("a call already ended for its client (orphaned) just frees its slot", () => {
    const parts = routerParts();
    const a = parts.addDealer("A", ["Svc.m"]);
    parts.addDealer("B", ["Svc.m"]);
    const call = parts.submit("Svc.m");
    parts.calls.abandoned(call, "client disconnected");
    parts.registry.lost(a, "disconnected");
    expect(call.state).toBe("done");
    expect(parts.sink.replies).toEqual([]);
    expect(parts.outbound.requests().length).toBe(1);
    expect(parts.calls.onDealers.size).toBe(0);
  });

  test("while the router stops, nothing is re-dispatched", () => {
    const parts = routerParts();
    const a = parts.addDealer("A", ["Svc.m"]);
    parts.addDealer("B", ["Svc.m"]);
    const call = parts.submit("Svc.m");
    parts.state.stopping = true;
    parts.registry.lost(a, "disconnected");
    expect(call.state).toBe("done");
    expect(parts.sink.replies).toEqual([{ clientId: call.clientId, kind: "ERROR", code: "DEALER_LOST" }]);
  });

  test("a drained dealer that says BYE: what it never started runs elsewhere without using a redispatch", () => {
    const parts = routerParts({ maxRedispatch: 0 });
    const a = parts.addDealer("A", ["Svc.m"]);
    parts.addDealer("B", ["Svc.m"], 0);
    const call = parts.submit("Svc.m");
    parts.registry.drain(a);
    parts.registry.lost(a, "unregistered");
    expect(call.state).toBe("queued");
    expect(call.redispatchesLeft).toBe(0);
  });

  test("a drained dealer that says BYE with nobody left: its unstarted calls fail with NO_SUCH_METHOD, not DEALER_LOST", () => {
    const parts = routerParts();
    const a = parts.addDealer("A", ["Svc.m"]);
    const call = parts.submit("Svc.m");
    parts.registry.drain(a);
    parts.registry.lost(a, "unregistered");
    expect(parts.sink.replies).toEqual([{ clientId: call.clientId, kind: "ERROR", code: "NO_SUCH_METHOD" }]);
  });
});
