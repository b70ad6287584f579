/**
 * Requirements without sockets: which dealer takes a call that requires tags, the order among
 * such calls, a dealer in setup, and the queue's count of restricted calls through every way out.
 * Also the GPU helpers: `nvidia-smi -L` parsing, model tags, and the round-robin split.
 */
import { describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { assignGpus, gpuModelTag, gpuTagFor, parseGpuList } from "../../src/dealer/gpus.ts";
import { CancelledError } from "../../src/protocol/index.ts";
import type { Call } from "../../src/router/calls.ts";
import { meetsRequirement } from "../../src/router/requirements.ts";
import { routerParts } from "../helpers/router-parts.ts";

type Parts = ReturnType<typeof routerParts>;

function addTagged(parts: Parts, name: string, tags: Record<string, string>, options: { setup?: boolean; maxConcurrent?: number } = {}) {
  const dealer = parts.registry.register(Buffer.from(name, "latin1"), {
    role: "dealer",
    version: 3,
    service: "Svc",
    methods: { "Svc.m": { stream: false } },
    tags,
    ...(options.maxConcurrent !== undefined ? { maxConcurrent: options.maxConcurrent } : {}),
    ...(options.setup ? { state: "setup" as const } : {}),
  });
  parts.dispatcher.serveDealer(dealer);
  return dealer;
}

function submitRequiring(parts: Parts, require?: Record<string, string>): Call {
  const call = parts.receive("Svc.m");
  if (require !== undefined) call.require = require;
  parts.dispatcher.admit(call);
  return call;
}

/** Routing id (the dealer's name) of each REQUEST sent, in order. */
function dispatchedTo(parts: Parts): string[] {
  return parts.outbound.requests().map((request) => request.to);
}

describe("dispatch with requirements", () => {
  test("a call goes only to a dealer that has every required tag; a call without one goes anywhere", () => {
    const parts = routerParts({ mode: "load_balance" });
    addTagged(parts, "A", { gpu: "a100", region: "eu" });
    addTagged(parts, "B", { gpu: "h200", region: "eu" });
    for (let i = 0; i < 3; i++) submitRequiring(parts, { gpu: "h200" });
    submitRequiring(parts, { region: "eu", gpu: "a100" });
    expect(dispatchedTo(parts)).toEqual(["B", "B", "B", "A"]);
  });

  test("fifo: calls that require a busy dealer's tags wait in order and do not hold up calls others can run", () => {
    const parts = routerParts({ mode: "fifo" });
    addTagged(parts, "H", { gpu: "h200" });
    addTagged(parts, "C", { gpu: "cpu" });
    const first = submitRequiring(parts, { gpu: "h200" });
    const second = submitRequiring(parts, { gpu: "h200" });
    const third = submitRequiring(parts, { gpu: "h200" });
    expect([second.state, third.state]).toEqual(["queued", "queued"]);
    // C is free and meets no h200 requirement: a plain call behind them runs on C at once.
    const plain = submitRequiring(parts);
    expect(plain.state).toBe("running");
    expect(dispatchedTo(parts)).toEqual(["H", "C"]);
    parts.answer(plain);
    parts.answer(first);
    expect(second.state).toBe("running");
    expect(third.state).toBe("queued");
    parts.answer(second);
    expect(dispatchedTo(parts)).toEqual(["H", "C", "H", "H"]);
    expect(parts.queues.of("Svc.m").restricted).toBe(0);
  });

  test("a freed dealer takes the oldest waiting call it meets, skipping older ones it does not", () => {
    const parts = routerParts({ mode: "fifo" });
    const h = addTagged(parts, "H", { gpu: "h200" });
    const c = addTagged(parts, "C", { gpu: "cpu" });
    const onH = submitRequiring(parts, { gpu: "h200" });
    const onC = submitRequiring(parts, { gpu: "cpu" });
    const waitsForH = submitRequiring(parts, { gpu: "h200" });
    const anyone = submitRequiring(parts);
    expect([waitsForH.state, anyone.state]).toEqual(["queued", "queued"]);
    parts.answer(onC);
    expect(anyone.state).toBe("running");
    expect(anyone.dealer).toBe(c);
    expect(waitsForH.state).toBe("queued");
    parts.answer(onH);
    expect(waitsForH.dealer).toBe(h);
    const queue = parts.queues.of("Svc.m");
    expect([queue.count, queue.restricted, queue.snapshot().length]).toEqual([0, 0, 0]);
  });

  test("a call taken from the middle of the line and re-queued after its dealer is lost is there once", () => {
    const parts = routerParts({ mode: "fifo", maxRedispatch: 1 });
    addTagged(parts, "C", { gpu: "cpu" });
    const h = addTagged(parts, "H", { gpu: "h200" });
    submitRequiring(parts, { gpu: "cpu" });
    const firstOnH = submitRequiring(parts, { gpu: "h200" });
    const waitsForC = submitRequiring(parts, { gpu: "cpu" });
    const fromTheMiddle = submitRequiring(parts, { gpu: "h200" });
    parts.answer(firstOnH);
    // H took the second call of the line, past the one waiting for C.
    expect(fromTheMiddle.dealer).toBe(h);
    const queue = parts.queues.of("Svc.m");
    expect(queue.snapshot()).toEqual([waitsForC]);
    parts.registry.lost(h, "disconnected");
    // Back at the head, once; nobody has h200 now, so it fails rather than wait (no waitForDealer).
    expect(fromTheMiddle.state).toBe("done");
    expect(queue.snapshot()).toEqual([waitsForC]);
    expect([queue.count, queue.restricted]).toEqual([1, 1]);
    const h2 = addTagged(parts, "H2", { gpu: "h200" });
    const later = submitRequiring(parts, { gpu: "h200" });
    expect(later.dealer).toBe(h2);
  });

  test("a re-queued call goes back to the head of its line exactly once", () => {
    const parts = routerParts({ mode: "fifo", maxRedispatch: 1 });
    const h = addTagged(parts, "H", { gpu: "h200" });
    addTagged(parts, "H2", { gpu: "h200" }, { maxConcurrent: 1 });
    const c = addTagged(parts, "C", { gpu: "cpu" });
    const onC = submitRequiring(parts, { gpu: "cpu" });
    const onH = submitRequiring(parts, { gpu: "h200" });
    const onH2 = submitRequiring(parts, { gpu: "h200" });
    const waitsForC = submitRequiring(parts, { gpu: "cpu" });
    expect([onC.dealer, onH.dealer === h || onH2.dealer === h]).toEqual([c, true]);
    const lostCall = onH.dealer === h ? onH : onH2;
    parts.registry.lost(h, "disconnected");
    const queue = parts.queues.of("Svc.m");
    expect(queue.snapshot()).toEqual([lostCall, waitsForC]);
    expect([queue.count, queue.restricted]).toEqual([2, 2]);
  });

  test("counts of restricted calls stay right when a waiting one is cancelled", () => {
    const parts = routerParts({ mode: "fifo" });
    addTagged(parts, "H", { gpu: "h200" });
    submitRequiring(parts, { gpu: "h200" });
    const waiting = submitRequiring(parts, { gpu: "h200" });
    const queue = parts.queues.of("Svc.m");
    expect(queue.restricted).toBe(1);
    parts.calls.finished(waiting, new CancelledError("cancelled by the client"));
    expect([queue.count, queue.restricted]).toEqual([0, 0]);
  });

  test("the last dealer with the tags leaves: calls waiting for them fail naming the requirement, unless they wait for a dealer", () => {
    const parts = routerParts({ mode: "fifo" });
    const h = addTagged(parts, "H", { gpu: "h200" });
    addTagged(parts, "C", { gpu: "cpu" });
    const running = submitRequiring(parts, { gpu: "h200" });
    const fails = submitRequiring(parts, { gpu: "h200" });
    const patient = parts.receive("Svc.m", { waitForDealer: true });
    patient.require = { gpu: "h200" };
    parts.dispatcher.admit(patient);
    parts.answer(running);
    parts.registry.drain(h);
    parts.registry.lost(h, "unregistered");
    expect(fails.state).toBe("done");
    expect(parts.sink.replies.find((reply) => reply.clientId === fails.clientId)).toEqual({
      clientId: fails.clientId,
      kind: "ERROR",
      code: "NO_SUCH_METHOD",
    });
    expect(patient.state).toBe("queued");
  });

  test("a dealer in setup is registered but gets nothing until READY; then it takes the oldest waiting call", () => {
    const parts = routerParts({ mode: "fifo" });
    const dealer = addTagged(parts, "S", {}, { setup: true });
    const call = submitRequiring(parts);
    expect(call.state).toBe("queued");
    expect(dealer.hasFreeSlot).toBe(false);
    parts.registry.ready(dealer);
    parts.dispatcher.serveDealer(dealer);
    expect(call.dealer).toBe(dealer);
  });
});

describe("meetsRequirement", () => {
  test("every required entry with the same value; extra tags do not matter; no requirement is met by all", () => {
    expect(meetsRequirement({ gpu: "h200", region: "eu" }, { gpu: "h200" })).toBe(true);
    expect(meetsRequirement({ gpu: "h200" }, { gpu: "h200", region: "eu" })).toBe(false);
    expect(meetsRequirement({ gpu: "a100" }, { gpu: "h200" })).toBe(false);
    expect(meetsRequirement({}, undefined)).toBe(true);
  });
});

describe("GPU helpers", () => {
  const listing = [
    "GPU 0: NVIDIA H200 (UUID: GPU-5f1c0b2e-7a3d-4c1e-9b8a-3e2f1d0c9b8a)",
    "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9)",
    "  MIG 1g.10gb     Device  0: (UUID: MIG-11111111-2222-3333-4444-555555555555)",
    "GPU 2: NVIDIA GeForce RTX 4090 (UUID: GPU-99999999-8888-7777-6666-555555555555)",
    "",
  ].join("\n");

  test("nvidia-smi -L: GPU lines become devices; MIG lines and blanks are skipped", () => {
    expect(parseGpuList(listing)).toEqual([
      { index: "0", model: "NVIDIA H200", uuid: "GPU-5f1c0b2e-7a3d-4c1e-9b8a-3e2f1d0c9b8a" },
      { index: "1", model: "NVIDIA A100-SXM4-80GB", uuid: "GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9" },
      { index: "2", model: "NVIDIA GeForce RTX 4090", uuid: "GPU-99999999-8888-7777-6666-555555555555" },
    ]);
    expect(parseGpuList("No devices were found\n")).toEqual([]);
  });

  test("a model as a tag value, and the tag of a group of devices", () => {
    expect(gpuModelTag("NVIDIA H200")).toBe("h200");
    expect(gpuModelTag("NVIDIA A100-SXM4-80GB")).toBe("a100-sxm4-80gb");
    expect(gpuModelTag("NVIDIA GeForce RTX 4090")).toBe("geforce-rtx-4090");
    const devices = parseGpuList(listing);
    expect(gpuTagFor(["0"], devices)).toBe("h200");
    expect(gpuTagFor(["GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"], devices)).toBe("a100-sxm4-80gb");
    expect(gpuTagFor(["0", "1"], devices)).toBe("h200+a100-sxm4-80gb");
    expect(gpuTagFor(["7"], devices)).toBeUndefined();
  });

  test("round robin: instances 1 and 3 share GPU 0 of two; groups of 2 from 4", () => {
    expect(assignGpus(["0", "1"], 4, 1)).toEqual([["0"], ["1"], ["0"], ["1"]]);
    expect(assignGpus(["0", "1", "2", "3"], 3, 2)).toEqual([
      ["0", "1"],
      ["2", "3"],
      ["0", "1"],
    ]);
    expect(assignGpus(["3"], 2, 1)).toEqual([["3"], ["3"]]);
  });
});
