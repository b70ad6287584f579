/**
 * ZMTP 3.1 conformance cases: VoidRail's own Router/Dealer (src/zmtp) against real
 * libzmq 4.3.5 sockets (npm `zeromq`, running in a Node child process driven by
 * LibzmqPeer). Each case throws an Error that says what was sent and what came back.
 *
 * Runtime-neutral: the same cases run in-process under `bun test` and, bundled, under
 * Node (test/conformance/node-runner.ts). Use createCaseRunner() to run them.
 */
import { unlinkSync } from "node:fs";
import { createServer } from "node:net";
import { randomBytes } from "node:crypto";
import { Dealer, Router } from "../../src/zmtp/index.ts";
import type { DealerOptions, RouterOptions } from "../../src/zmtp/index.ts";
import { LibzmqPeer, type PeerEvent } from "../helpers/libzmq-peer.ts";
import {
  assertFrames,
  bigFrame,
  describeFrame,
  describeFrames,
  patternFrame,
  sha256,
  type FrameInput,
  type FrameSpec,
  type ReceivedFrame,
} from "../helpers/frames.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

export type Transport = "tcp" | "ipc";

export interface CaseContext {
  readonly transport: Transport;
  /** A fresh endpoint for this case's transport (tcp://127.0.0.1:0 or a new ipc path). */
  endpoint(): string;
  /** The libzmq peer process (shared between cases; its sockets are closed after each case). */
  peer(): Promise<LibzmqPeer>;
  /** A peer socket name unique within the run. */
  name(base: string): string;
  /** Our Router, closed after the case. */
  router(options?: RouterOptions): Router;
  /** Our Dealer, closed after the case. */
  dealer(options?: DealerOptions): Dealer;
  /** Runs `fn` after the case (last registered first). */
  defer(fn: () => unknown): void;
}

export interface ConformanceCase {
  name: string;
  run: (ctx: CaseContext) => Promise<void>;
  /** Deadline for the whole case (default 15 s). */
  timeoutMs?: number;
}

const TRANSPORTS: readonly Transport[] = ["tcp", "ipc"];
const RECV_MS = 5000;
const BIG_RECV_MS = 20_000;

// ---------------------------------------------------------------------------
// small helpers

type OurSocket = Router | Dealer;

/** Receives on our socket within `timeoutMs`, or fails saying what was expected. */
function ourReceive(sock: OurSocket, what: string, timeoutMs = RECV_MS): Promise<Buffer[]> {
  return waitFor(sock.receive(), { timeoutMs, message: `our ${sock instanceof Router ? "Router" : "Dealer"} to receive ${what}` });
}

/** Sends on our socket; the promise must settle within `timeoutMs`. */
function ourSend(sock: OurSocket, frames: (Uint8Array | string)[], what: string, timeoutMs = RECV_MS): Promise<void> {
  return waitFor(sock.send(frames), {
    timeoutMs,
    message: `our ${sock instanceof Router ? "Router" : "Dealer"}.send(${describeFrames(frames)}) to resolve (${what})`,
  });
}

async function peerReceive(peer: LibzmqPeer, sock: string, what: string, timeoutMs = RECV_MS): Promise<ReceivedFrame[]> {
  try {
    return await peer.receive(sock, timeoutMs);
  } catch (err) {
    throw new Error(`libzmq ${sock} did not receive ${what}: ${(err as Error).message}`);
  }
}

function bytes(...values: number[]): Buffer {
  return Buffer.from(values);
}

function asBuffer(frame: ReceivedFrame, what: string): Buffer {
  if (!Buffer.isBuffer(frame)) throw new Error(`${what}: expected a small frame, got ${describeFrame(frame)}`);
  return frame;
}

/** Records our socket's events of one type from now on. */
function recordEvents<K extends "disconnect" | "handshake" | "connect:retry" | "handshake:error">(
  sock: OurSocket,
  type: K,
): { list: unknown[]; next(timeoutMs: number, message: string): Promise<unknown> } {
  const list: unknown[] = [];
  const waiters: ((e: unknown) => void)[] = [];
  sock.events.on(type, (e: unknown) => {
    list.push(e);
    for (const w of waiters.splice(0)) w(e);
  });
  return {
    list,
    next(timeoutMs, message) {
      return waitFor(new Promise((resolve) => waiters.push(resolve)), { timeoutMs, message });
    },
  };
}

/** Waits until our socket has recorded `count` events. */
function nthEvent(
  rec: { list: unknown[]; next(t: number, m: string): Promise<unknown> },
  count: number,
  timeoutMs: number,
  message: string,
): Promise<void> {
  return waitFor(() => rec.list.length >= count, { timeoutMs, message });
}

function errorOf(e: unknown): string {
  const err = (e as { error?: { message?: string; code?: string } } | undefined)?.error;
  return err ? `${err.code ?? ""} ${err.message ?? ""}`.trim() : "no error given";
}

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!port) throw new Error("could not find a free TCP port");
  return port;
}

/** An endpoint nobody listens on yet (for connect-before-bind). */
async function unboundEndpoint(ctx: CaseContext): Promise<string> {
  if (ctx.transport === "ipc") return ctx.endpoint();
  return `tcp://127.0.0.1:${await freeTcpPort()}`;
}

// Big payloads are generated once per process: a 64 MiB pattern takes a moment.
const patternCache = new Map<string, { buf: Buffer; sha256: string }>();
function pattern(seed: number, size: number): { spec: FrameSpec; buf: Buffer; digest: { size: number; sha256: string } } {
  const key = `${seed}:${size}`;
  let hit = patternCache.get(key);
  if (!hit) {
    const buf = patternFrame(seed, size);
    hit = { buf, sha256: sha256(buf) };
    patternCache.set(key, hit);
  }
  return { spec: { pattern: seed, size }, buf: hit.buf, digest: { size, sha256: hit.sha256 } };
}

/** A frame as our side sends it: specs become (cached) bytes. */
function localFrame(f: FrameInput): Uint8Array | string {
  if (typeof f === "string" || f instanceof Uint8Array) return f;
  if ("pattern" in f) return pattern(f.pattern, f.size).buf;
  return fillFrame(f.fill, f.size).buf;
}

/** A frame as a check expects it: specs become (cached) digests, so nothing is regenerated. */
function expectedFrame(f: FrameInput): Uint8Array | string | { size: number; sha256: string } {
  if (typeof f === "string" || f instanceof Uint8Array) return f;
  if ("pattern" in f) return pattern(f.pattern, f.size).digest;
  const { buf, sha256: digest } = fillFrame(f.fill, f.size);
  return { size: buf.length, sha256: digest };
}

function fillFrame(fill: number, size: number): { buf: Buffer; sha256: string } {
  const key = `fill:${fill}:${size}`;
  let hit = patternCache.get(key);
  if (!hit) {
    const buf = bigFrame(fill, size);
    hit = { buf, sha256: sha256(buf) };
    patternCache.set(key, hit);
  }
  return hit;
}

const BOUNDARY_SIZES = [0, 1, 254, 255, 256, 257, 65536];

/** Random content, so a misplaced or dropped byte always shows. */
function sizedFrames(): Buffer[] {
  return BOUNDARY_SIZES.map((n) => randomBytes(n));
}

// ---------------------------------------------------------------------------
// the two topologies

/** Our Router bound; one libzmq Dealer connected to it. */
async function ourRouterWithLibzmqDealer(ctx: CaseContext, dealerOptions: Record<string, unknown> = {}, routerOptions: RouterOptions = {}) {
  const router = ctx.router(routerOptions);
  await router.bind(ctx.endpoint());
  const endpoint = router.lastEndpoint!;
  const peer = await ctx.peer();
  const d = ctx.name("dealer");
  await peer.create(d, "dealer", dealerOptions);
  await peer.connect(d, endpoint);
  return { router, endpoint, peer, d };
}

/** libzmq Router bound; our Dealer connected to it. */
async function libzmqRouterWithOurDealer(ctx: CaseContext, routerOptions: Record<string, unknown> = {}, dealerOptions: DealerOptions = {}) {
  const peer = await ctx.peer();
  const r = ctx.name("router");
  await peer.create(r, "router", routerOptions);
  const endpoint = await peer.bind(r, ctx.endpoint());
  const dealer = ctx.dealer(dealerOptions);
  dealer.connect(endpoint);
  return { peer, r, endpoint, dealer };
}

/**
 * libzmq Dealer → our Router → back: sends each message from the libzmq Dealer, checks
 * that our Router got [routingId, ...message], replies with the message and checks that
 * the libzmq Dealer got it unchanged.
 */
async function roundTripViaOurRouter(ctx: CaseContext, messages: FrameInput[][], opts: { bigTimeoutMs?: number } = {}): Promise<void> {
  const { router, peer, d } = await ourRouterWithLibzmqDealer(ctx, { routingId: "conformance-dealer" });
  const timeout = opts.bigTimeoutMs ?? RECV_MS;
  for (let i = 0; i < messages.length; i++) {
    const msg = messages[i];
    const expected = msg.map(expectedFrame);
    await peer.send(d, msg, { timeoutMs: timeout });
    const got = await ourReceive(router, `message ${i} ${describeFrames(msg)} sent by a libzmq Dealer`, timeout);
    assertFrames(
      got,
      ["conformance-dealer", ...expected],
      `message ${i}: libzmq Dealer → our Router (expected routing id + the frames sent)`,
    );
    const reply = got.slice(1);
    await ourSend(router, [got[0], ...reply], `reply ${i}`, timeout);
    const back = await peerReceive(peer, d, `our Router's reply ${i} ${describeFrames(reply)}`, timeout);
    assertFrames(back, expected, `reply ${i}: our Router → libzmq Dealer`);
  }
}

/**
 * our Dealer → libzmq Router → back: sends each message from our Dealer, checks that the
 * libzmq Router got [our id, ...message], replies and checks that our Dealer got it.
 */
async function roundTripViaLibzmqRouter(ctx: CaseContext, messages: FrameInput[][], opts: { bigTimeoutMs?: number } = {}): Promise<void> {
  const { peer, r, dealer } = await libzmqRouterWithOurDealer(ctx, {}, { routingId: "our-dealer" });
  const timeout = opts.bigTimeoutMs ?? RECV_MS;
  for (let i = 0; i < messages.length; i++) {
    const msg = messages[i];
    const expected = msg.map(expectedFrame);
    await ourSend(dealer, msg.map(localFrame), `message ${i}`, timeout);
    const got = await peerReceive(peer, r, `message ${i} ${describeFrames(msg)} from our Dealer`, timeout);
    assertFrames(got, ["our-dealer", ...expected], `message ${i}: our Dealer → libzmq Router (expected our routing id + the frames sent)`);
    await peer.send(r, [asBuffer(got[0], "routing id"), ...msg], { timeoutMs: timeout });
    const back = await ourReceive(dealer, `the libzmq Router's reply ${i} ${describeFrames(msg)}`, timeout);
    assertFrames(back, expected, `reply ${i}: libzmq Router → our Dealer`);
  }
}

// ---------------------------------------------------------------------------
// case definitions

function perTransport(
  name: string,
  run: (ctx: CaseContext) => Promise<void>,
  opts: { transports?: readonly Transport[]; timeoutMs?: number } = {},
): ConformanceCase[] {
  return (opts.transports ?? TRANSPORTS).map((t) => ({ name: `${name} [${t}]`, timeoutMs: opts.timeoutMs, run: (ctx) => run(ctx) }));
}

const MULTI_FRAME: FrameInput[][] = [
  ["one"],
  ["a", "bb", "ccc", bytes(0, 1, 2, 0xfe, 0xff)],
  Array.from({ length: 20 }, (_, i) => `frame-${i}`),
];

const EMPTY_FRAMES: FrameInput[][] = [[""], ["", ""], ["", "middle", ""], ["head", ""], ["", "tail"]];

function boundaryMessages(): FrameInput[][] {
  const frames = sizedFrames();
  // One message per size, then all sizes in one message, then reversed (long before short).
  return [...frames.map((f) => [f]), frames, [...frames].reverse()];
}

function mib1Messages(): FrameInput[][] {
  const big = pattern(1, 1 << 20).spec;
  return [[big], ["head", big, ""], [{ fill: 0x5a, size: 1 << 20 }, big]];
}

function mib64Messages(): FrameInput[][] {
  return [[pattern(64, 64 << 20).spec]];
}

const routerCases: ConformanceCase[] = [
  ...perTransport("our Router ↔ libzmq Dealer: multi-frame messages", (ctx) => roundTripViaOurRouter(ctx, MULTI_FRAME)),
  ...perTransport("our Router ↔ libzmq Dealer: empty frames", (ctx) => roundTripViaOurRouter(ctx, EMPTY_FRAMES)),
  ...perTransport("our Router ↔ libzmq Dealer: frame sizes 0/1/254/255/256/257/65536 (short/long encoding)", (ctx) =>
    roundTripViaOurRouter(ctx, boundaryMessages()),
  ),
  ...perTransport(
    "our Router ↔ libzmq Dealer: 1 MiB messages",
    (ctx) => roundTripViaOurRouter(ctx, mib1Messages(), { bigTimeoutMs: BIG_RECV_MS }),
    {
      timeoutMs: 30_000,
    },
  ),
  ...perTransport(
    "our Router ↔ libzmq Dealer: 64 MiB message",
    (ctx) => roundTripViaOurRouter(ctx, mib64Messages(), { bigTimeoutMs: BIG_RECV_MS }),
    {
      timeoutMs: 45_000,
    },
  ),
  ...perTransport(
    "our Router ↔ 100 concurrent libzmq Dealers: each gets its own reply",
    async (ctx) => {
      const router = ctx.router();
      await router.bind(ctx.endpoint());
      const endpoint = router.lastEndpoint!;
      const peer = await ctx.peer();
      const N = 100;
      const names = Array.from({ length: N }, (_, i) => ctx.name(`many-${i}`));
      await Promise.all(names.map((n) => peer.create(n, "dealer")));
      await Promise.all(names.map((n) => peer.connect(n, endpoint)));
      await Promise.all(names.map((n, i) => peer.send(n, [`hello from ${i}`, bytes(i)])));
      const seen = new Map<string, number>();
      for (let k = 0; k < N; k++) {
        const [id, text, idx, ...rest] = await ourReceive(router, `message ${k + 1} of ${N} (got ${k} so far)`);
        if (!idx || rest.length > 0)
          throw new Error(`our Router got a malformed message ${describeFrames([id, text, idx, ...rest].filter(Boolean) as Buffer[])}`);
        const i = idx[0];
        if (text.toString() !== `hello from ${i}`) throw new Error(`our Router: frame "${text}" does not match index ${i}`);
        const key = id.toString("hex");
        if (seen.has(key)) throw new Error(`routing id ${key} given to both dealer ${seen.get(key)} and dealer ${i}`);
        seen.set(key, i);
        if (id.length !== 5 || id[0] !== 0)
          throw new Error(`dealer ${i} (no routingId) got routing id ${describeFrame(id)}; libzmq generates 5 bytes starting with 0x00`);
        await ourSend(router, [id, `reply to ${i}`], `reply to dealer ${i}`);
      }
      const replies = await Promise.all(names.map((n) => peerReceive(peer, n, "its reply")));
      for (const [i, frames] of replies.entries()) assertFrames(frames, [`reply to ${i}`], `libzmq Dealer ${i}`);
    },
    { timeoutMs: 30_000 },
  ),
  ...perTransport("routing id set by a libzmq Dealer is the first frame at our Router", async (ctx) => {
    const router = ctx.router();
    await router.bind(ctx.endpoint());
    const peer = await ctx.peer();
    const ids = ["libzmq-dealer-A", "x", "ÿ-utf8-id", "z".repeat(255)];
    const names = ids.map((_, i) => ctx.name(`id-${i}`));
    for (let i = 0; i < ids.length; i++) {
      await peer.create(names[i], "dealer", { routingId: ids[i] });
      await peer.connect(names[i], router.lastEndpoint!);
      await peer.send(names[i], ["who am i"]);
      const got = await ourReceive(router, `a message from libzmq Dealer with routingId "${ids[i].slice(0, 20)}"`);
      assertFrames(got, [ids[i], "who am i"], `routingId ${JSON.stringify(ids[i].slice(0, 20))} (${Buffer.byteLength(ids[i])} bytes)`);
    }
    // Replies addressed by those ids reach the right dealer (sent in reverse order).
    for (let i = ids.length - 1; i >= 0; i--) await ourSend(router, [ids[i], `for ${i}`], `reply by id ${i}`);
    for (let i = 0; i < ids.length; i++)
      assertFrames(await peerReceive(peer, names[i], "a reply addressed by its routingId"), [`for ${i}`], `libzmq Dealer ${i}`);
  }),
  ...perTransport("libzmq Dealer without routingId gets a generated 5-byte id starting with 0x00", async (ctx) => {
    const router = ctx.router();
    await router.bind(ctx.endpoint());
    const peer = await ctx.peer();
    const a = ctx.name("anon-a");
    const b = ctx.name("anon-b");
    const ids: Buffer[] = [];
    for (const n of [a, b]) {
      await peer.create(n, "dealer");
      await peer.connect(n, router.lastEndpoint!);
      await peer.send(n, [n]);
      const got = await ourReceive(router, `a message from anonymous libzmq Dealer ${n}`);
      if (got.length !== 2 || got[1].toString() !== n) throw new Error(`our Router: expected [id, "${n}"], got ${describeFrames(got)}`);
      const id = got[0];
      if (id.length !== 5 || id[0] !== 0x00)
        throw new Error(`generated routing id is ${describeFrame(id)} (hex ${id.toString("hex")}); expected 5 bytes starting with 0x00`);
      ids.push(id);
    }
    if (ids[0].equals(ids[1])) throw new Error(`two anonymous dealers got the same routing id ${ids[0].toString("hex")}`);
    await ourSend(router, [ids[1], "to b"], "reply to b");
    await ourSend(router, [ids[0], "to a"], "reply to a");
    assertFrames(await peerReceive(peer, a, "its reply"), ["to a"], "anonymous dealer a");
    assertFrames(await peerReceive(peer, b, "its reply"), ["to b"], "anonymous dealer b");
  }),
  ...perTransport(
    "libzmq Dealer heartbeats (200/800 ms) keep an idle connection to our Router up for 2 s",
    (ctx) => heartbeatCase(ctx, "router"),
    {
      timeoutMs: 20_000,
    },
  ),
  ...perTransport(
    "libzmq Dealer's PING TTL (heartbeatTimeToLive 1000 ms = 10 ds) does not make our Router drop a live connection",
    (ctx) => heartbeatCase(ctx, "router", { idleMs: 1000, heartbeatTimeToLive: 1000 }),
    { transports: ["tcp"], timeoutMs: 20_000 },
  ),
];

const dealerCases: ConformanceCase[] = [
  ...perTransport("our Dealer ↔ libzmq Router: multi-frame messages", (ctx) => roundTripViaLibzmqRouter(ctx, MULTI_FRAME)),
  ...perTransport("our Dealer ↔ libzmq Router: empty frames", (ctx) => roundTripViaLibzmqRouter(ctx, EMPTY_FRAMES)),
  ...perTransport("our Dealer ↔ libzmq Router: frame sizes 0/1/254/255/256/257/65536 (short/long encoding)", (ctx) =>
    roundTripViaLibzmqRouter(ctx, boundaryMessages()),
  ),
  ...perTransport(
    "our Dealer ↔ libzmq Router: 1 MiB messages",
    (ctx) => roundTripViaLibzmqRouter(ctx, mib1Messages(), { bigTimeoutMs: BIG_RECV_MS }),
    {
      timeoutMs: 30_000,
    },
  ),
  ...perTransport(
    "our Dealer ↔ libzmq Router: 64 MiB message",
    (ctx) => roundTripViaLibzmqRouter(ctx, mib64Messages(), { bigTimeoutMs: BIG_RECV_MS }),
    {
      timeoutMs: 45_000,
    },
  ),
  ...perTransport("our Dealer's routingId shows up at a libzmq Router", async (ctx) => {
    const { peer, r, dealer } = await libzmqRouterWithOurDealer(ctx, {}, { routingId: "voidrail-dealer-1" });
    await ourSend(dealer, ["hi"], "first message");
    const got = await peerReceive(peer, r, "a message from our Dealer");
    assertFrames(got, ["voidrail-dealer-1", "hi"], "libzmq Router (first frame must be our Dealer's routingId)");
    await peer.send(r, ["voidrail-dealer-1", "addressed by id"]);
    assertFrames(await ourReceive(dealer, "a reply the libzmq Router addressed by our routingId"), ["addressed by id"], "our Dealer");
  }),
  ...perTransport("our Dealer without routingId gets a generated id at a libzmq Router", async (ctx) => {
    const { peer, r, dealer } = await libzmqRouterWithOurDealer(ctx);
    await ourSend(dealer, ["anon"], "first message");
    const got = await peerReceive(peer, r, "a message from our anonymous Dealer");
    const id = asBuffer(got[0], "routing id");
    if (id.length !== 5 || id[0] !== 0)
      throw new Error(
        `libzmq Router gave our anonymous Dealer id ${describeFrame(id)}; expected a generated 5-byte id (did we announce an empty Identity?)`,
      );
    assertFrames(got.slice(1), ["anon"], "libzmq Router");
    await peer.send(r, [id, "back"]);
    assertFrames(await ourReceive(dealer, "the libzmq Router's reply"), ["back"], "our Dealer");
  }),
  ...perTransport("our Dealer connects before the libzmq Router binds (reconnects until it can)", async (ctx) => {
    const endpoint = await unboundEndpoint(ctx);
    const dealer = ctx.dealer({ routingId: "early-bird", reconnectInterval: 50 });
    const retries = recordEvents(dealer, "connect:retry");
    const handshakes = recordEvents(dealer, "handshake");
    dealer.connect(endpoint);
    // The first attempt must have failed (nothing listens yet) before libzmq binds.
    await nthEvent(retries, 1, 5000, `our Dealer to report a failed connection attempt to ${endpoint} ("connect:retry")`);
    const sent = ourSend(dealer, ["sent before bind"], "message queued while unconnected", 10_000);
    sent.catch(() => {});
    const peer = await ctx.peer();
    const r = ctx.name("late-router");
    await peer.create(r, "router");
    const bound = await peer.bind(r, endpoint, { retryMs: 2000 });
    const retriesAtBind = retries.list.length;
    await nthEvent(
      handshakes,
      1,
      5000,
      `our Dealer (reconnectInterval 50) to connect and handshake once libzmq bound ${bound}; it had failed ${retriesAtBind} attempt(s) before the bind and ${retries.list.length - retriesAtBind} since`,
    );
    await sent;
    const got = await peerReceive(peer, r, `the message our Dealer sent before ${bound} was bound`);
    assertFrames(got, ["early-bird", "sent before bind"], "libzmq Router");
    await peer.send(r, ["early-bird", "welcome"]);
    assertFrames(await ourReceive(dealer, "the libzmq Router's reply"), ["welcome"], "our Dealer");
  }),
  ...perTransport(
    "libzmq Router restarts on the same endpoint: our Dealer reconnects and traffic resumes",
    async (ctx) => {
      const { peer, r, endpoint, dealer } = await libzmqRouterWithOurDealer(ctx, {}, { routingId: "survivor", reconnectInterval: 50 });
      const handshakes = recordEvents(dealer, "handshake");
      const disconnects = recordEvents(dealer, "disconnect");
      await ourSend(dealer, ["before"], "first message");
      assertFrames(await peerReceive(peer, r, "the first message"), ["survivor", "before"], "libzmq Router (first life)");
      await peer.send(r, ["survivor", "ack 1"]);
      assertFrames(await ourReceive(dealer, "the first reply"), ["ack 1"], "our Dealer (first life)");
      if (handshakes.list.length !== 1)
        throw new Error(`expected 1 handshake on our Dealer before the restart, saw ${handshakes.list.length}`);

      await peer.close(r);
      await nthEvent(disconnects, 1, 5000, `our Dealer to notice that the libzmq Router on ${endpoint} closed ("disconnect")`);

      const r2 = ctx.name("router-reborn");
      await peer.create(r2, "router");
      await peer.bind(r2, endpoint, { retryMs: 3000 });
      await nthEvent(handshakes, 2, 5000, `our Dealer to reconnect and handshake with the restarted libzmq Router on ${endpoint}`);
      await ourSend(dealer, ["after"], "message after restart");
      assertFrames(await peerReceive(peer, r2, "a message after the restart"), ["survivor", "after"], "libzmq Router (second life)");
      await peer.send(r2, ["survivor", "ack 2"]);
      assertFrames(await ourReceive(dealer, "the reply after the restart"), ["ack 2"], "our Dealer (second life)");
    },
    { timeoutMs: 20_000 },
  ),
  ...perTransport(
    "libzmq Router heartbeats (200/800 ms) keep an idle connection from our Dealer up for 2 s",
    (ctx) => heartbeatCase(ctx, "dealer"),
    {
      timeoutMs: 20_000,
    },
  ),
  ...perTransport(
    "libzmq Router's PING TTL (heartbeatTimeToLive 1000 ms = 10 ds) does not make our Dealer drop a live connection",
    (ctx) => heartbeatCase(ctx, "dealer", { idleMs: 1000, heartbeatTimeToLive: 1000 }),
    { transports: ["tcp"], timeoutMs: 20_000 },
  ),
];

/**
 * libzmq heartbeats on an idle connection: libzmq PINGs every 200 ms and drops the
 * connection if nothing comes back within 800 ms, so this only stays up if we answer
 * PINGs with PONGs. Watches both ends for 2 s (a side that answers no PING is gone within
 * 1 s), then checks traffic still flows. (At 100/300 ms, a pause of this process longer than
 * 300 ms on a loaded machine could be enough for libzmq to drop a connection we do answer.)
 */
async function heartbeatCase(
  ctx: CaseContext,
  ours: "router" | "dealer",
  opts: { idleMs?: number; heartbeatTimeToLive?: number } = {},
): Promise<void> {
  const IDLE_MS = opts.idleMs ?? 2000;
  const hb: Record<string, number> = { heartbeatInterval: 200, heartbeatTimeout: 800 };
  if (opts.heartbeatTimeToLive !== undefined) hb.heartbeatTimeToLive = opts.heartbeatTimeToLive;
  const hbText = `heartbeatInterval 200, heartbeatTimeout 800${opts.heartbeatTimeToLive !== undefined ? `, heartbeatTimeToLive ${opts.heartbeatTimeToLive}` : ""}`;
  let peer: LibzmqPeer;
  let libzmqSock: string;
  let our: OurSocket;
  let exchange: (label: string) => Promise<void>;
  if (ours === "router") {
    const setup = await ourRouterWithLibzmqDealer(ctx, { ...hb, routingId: "hb-dealer" });
    peer = setup.peer;
    libzmqSock = setup.d;
    our = setup.router;
    exchange = async (label) => {
      await peer.send(libzmqSock, [label]);
      assertFrames(await ourReceive(setup.router, `"${label}" from the libzmq Dealer`), ["hb-dealer", label], `our Router (${label})`);
      await ourSend(setup.router, ["hb-dealer", `re: ${label}`], label);
      assertFrames(await peerReceive(peer, libzmqSock, `reply to "${label}"`), [`re: ${label}`], `libzmq Dealer (${label})`);
    };
  } else {
    const setup = await libzmqRouterWithOurDealer(ctx, hb, { routingId: "hb-ours" });
    peer = setup.peer;
    libzmqSock = setup.r;
    our = setup.dealer;
    exchange = async (label) => {
      await ourSend(setup.dealer, [label], label);
      assertFrames(await peerReceive(peer, libzmqSock, `"${label}" from our Dealer`), ["hb-ours", label], `libzmq Router (${label})`);
      await peer.send(libzmqSock, ["hb-ours", `re: ${label}`]);
      assertFrames(await ourReceive(setup.dealer, `reply to "${label}"`), [`re: ${label}`], `our Dealer (${label})`);
    };
  }
  const ourDisconnects = recordEvents(our, "disconnect");
  const ourHandshakes = recordEvents(our, "handshake");
  await exchange("before idle");
  const handshakesBefore = ourHandshakes.list.length;

  // The idle period: watch for a disconnect on either side; none may come.
  const ourDown = ourDisconnects.next(IDLE_MS, "").then(
    (e) => e,
    () => null,
  );
  const theirDown = peer.eventWithin(libzmqSock, "disconnect", IDLE_MS);
  const [ourEvent, theirEvent] = await Promise.all([ourDown, theirDown]);
  const libzmqEvents = await peer.events(libzmqSock);
  const summary = (evs: PeerEvent[]) => evs.map((e) => `${e.type}${e.error ? `(${e.error})` : ""}`).join(", ");
  const ourSide = ours === "router" ? "Router" : "Dealer";
  const theirSide = ours === "router" ? "Dealer" : "Router";
  const ourErrors = ourDisconnects.list.filter((e) => (e as { error?: unknown }).error !== undefined);
  if (ourErrors.length > 0) {
    // Our side closed the connection itself, with a reason.
    throw new Error(
      `our ${ourSide} dropped the idle connection on which libzmq (${hbText}) was heartbeating: ${ourErrors.map(errorOf).join("; ")}` +
        `${opts.heartbeatTimeToLive !== undefined ? ` (libzmq sends the PING TTL in deciseconds: ${opts.heartbeatTimeToLive / 100} on the wire = ${opts.heartbeatTimeToLive} ms)` : ""}. libzmq events: ${summary(libzmqEvents)}`,
    );
  }
  if (theirEvent) {
    throw new Error(
      `libzmq ${theirSide} (${hbText}) dropped the idle connection to our ${ourSide}` +
        ` — our side probably does not answer PING with PONG. libzmq events: ${summary(libzmqEvents)}; our disconnects: ${ourDisconnects.list.map(errorOf).join("; ") || "none"}`,
    );
  }
  if (ourEvent || ourDisconnects.list.length > 0) {
    throw new Error(
      `our ${ourSide} lost the idle heartbeating connection: ${ourDisconnects.list.map(errorOf).join("; ")}. libzmq events: ${summary(libzmqEvents)}`,
    );
  }
  if (ourHandshakes.list.length !== handshakesBefore)
    throw new Error(
      `our socket re-handshaked during the idle period (${handshakesBefore} → ${ourHandshakes.list.length}): the connection was dropped and re-made`,
    );
  const libzmqDisconnects = libzmqEvents.filter((e) => e.type === "disconnect").length;
  if (libzmqDisconnects > 0) throw new Error(`libzmq saw ${libzmqDisconnects} disconnect(s): ${summary(libzmqEvents)}`);
  await exchange("after idle");
}

export const conformanceCases: ConformanceCase[] = [...routerCases, ...dealerCases];

// ---------------------------------------------------------------------------
// running cases

export interface CaseRunner {
  run(c: ConformanceCase): Promise<void>;
  dispose(): Promise<void>;
}

let nameCounter = 0;

/**
 * Runs cases one at a time. One libzmq peer process is shared by the cases (started
 * lazily, replaced if it dies or stops answering); every socket a case created on it,
 * and every socket of ours, is closed after the case.
 */
export function createCaseRunner(): CaseRunner {
  let shared: LibzmqPeer | undefined;
  let starting: Promise<LibzmqPeer> | undefined;
  const getPeer = async (): Promise<LibzmqPeer> => {
    if (shared?.alive) return shared;
    if (!starting) {
      starting = LibzmqPeer.start().then(
        (p) => {
          shared = p;
          starting = undefined;
          return p;
        },
        (err) => {
          starting = undefined;
          throw err;
        },
      );
    }
    return starting;
  };

  return {
    async run(c: ConformanceCase): Promise<void> {
      const transport: Transport = c.name.endsWith("[ipc]") ? "ipc" : "tcp";
      const cleanups: (() => unknown)[] = [];
      const ipcPaths: string[] = [];
      let usedPeer: LibzmqPeer | undefined;
      const ctx: CaseContext = {
        transport,
        endpoint() {
          const ep = uniqueEndpoint(transport);
          if (ep.startsWith("ipc://")) ipcPaths.push(ep.slice("ipc://".length));
          return ep;
        },
        async peer() {
          usedPeer = await getPeer();
          return usedPeer;
        },
        name(base) {
          return `${base}-${++nameCounter}`;
        },
        router(options) {
          const s = new Router(options);
          cleanups.push(() => s.close());
          return s;
        },
        dealer(options) {
          const s = new Dealer(options);
          cleanups.push(() => s.close());
          return s;
        },
        defer(fn) {
          cleanups.push(fn);
        },
      };
      const timeoutMs = c.timeoutMs ?? 15_000;
      let failure: unknown;
      try {
        await waitFor(c.run(ctx), { timeoutMs, message: `case "${c.name}" to finish` });
      } catch (err) {
        failure = err;
      }
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch (err) {
          if (!failure) failure = new Error(`cleanup failed: ${(err as Error).message}`);
        }
      }
      if (usedPeer?.alive) {
        try {
          const socks = await usedPeer.list();
          await Promise.all(socks.map((s) => usedPeer!.close(s)));
        } catch {
          // A peer that cannot even list its sockets is replaced for the next case.
          await usedPeer.stop();
        }
      }
      for (const p of ipcPaths) {
        try {
          unlinkSync(p);
        } catch {
          /* already removed */
        }
      }
      if (failure) throw failure;
    },
    async dispose() {
      await shared?.stop();
      await LibzmqPeer.stopAll();
    },
  };
}
