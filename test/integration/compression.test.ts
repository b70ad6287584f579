/**
 * Compression of binary values on the wire (PROTOCOL.md §5.2), both directions, each codec:
 * a call's `compress` option compresses its binary arguments (seen on the wire by a stand-in
 * router), `@serviceMethod({ compress })` its results and chunks (seen by a raw VRP1 client
 * through the real router, which forwards them untouched); bytes already compressed (a PNG) are
 * sent as they are unless forced; and values arrive whole either way.
 *
 *   ./node_modules/.bin/bun test test/integration/compression.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  type BinarySlot,
  decodeMessage,
  encodeJsonOrThrow,
  encodeMessage,
  PROTOCOL_VERSION,
  ValidationError,
} from "../../src/protocol/index.ts";
import { ClientDealer, ServiceDealer, serviceMethod, silentLogger } from "../../src/index.ts";
import { Dealer, Router } from "../../src/zmtp/index.ts";
import { Cluster } from "../helpers/cluster.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const SIZE = 1024 * 1024;
/** A MiB that compresses well. */
const compressible = () => Uint8Array.from({ length: SIZE }, (_, i) => (i >> 6) % 251);
/** A MiB that starts like a PNG file: left alone unless forced. */
function png(): Uint8Array {
  const bytes = compressible();
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return bytes;
}
const digest = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

class Packed extends ServiceDealer {
  @serviceMethod
  sha256(data: Uint8Array) {
    return digest(data);
  }

  @serviceMethod({ compress: "zstd" })
  zstdImage() {
    return { image: compressible(), photo: png() };
  }

  @serviceMethod({ compress: "gzip" })
  gzipImage() {
    return { image: compressible(), photo: png() };
  }

  @serviceMethod({ compress: { codec: "zstd", force: true } })
  forcedImage() {
    return { photo: png() };
  }

  @serviceMethod({ compress: "gzip" })
  async *tiles(count: number) {
    for (let i = 0; i < count; i++) yield compressible();
  }
}

/** A stand-in router: welcomes one client and records the REQUESTs it sends, answering each with null. */
async function recordingRouter(): Promise<{ address: string; requests: { slots: BinarySlot[]; frames: Buffer[] }[]; close(): void }> {
  const socket = new Router({ logger: null });
  await socket.bind(uniqueEndpoint("tcp"));
  const requests: { slots: BinarySlot[]; frames: Buffer[] }[] = [];
  void (async () => {
    for await (const [routingId, ...frames] of socket) {
      const message = decodeMessage(frames, "router");
      if (!message.ok) continue;
      if (message.kind === "HELLO")
        await socket.send([
          routingId,
          ...encodeMessage("WELCOME", { role: "client", version: PROTOCOL_VERSION, heartbeatIntervalMs: 0, heartbeatTimeoutMs: 0 }),
        ]);
      if (message.kind === "REQUEST") {
        requests.push({ slots: message.header.binary ?? [], frames: frames.slice(4) });
        await socket.send([routingId, ...encodeMessage("RESULT", { id: message.header.id }, encodeJsonOrThrow(null))]);
      }
    }
  })();
  return { address: socket.lastEndpoint!, requests, close: () => socket.close() };
}

describe("compression of binary values", () => {
  const cluster = new Cluster("tcp");
  const closers: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    await cluster.dispose();
  });

  for (const codec of ["zstd", "gzip"] as const) {
    test(`a call with compress: "${codec}" sends compressible arguments compressed and a PNG as it is; with force, the PNG too`, async () => {
      const router = await recordingRouter();
      closers.push(router.close);
      const client = new ClientDealer({ routerAddress: router.address, logger: silentLogger, timeout: 10 });
      closers.push(() => client.close());
      await client.call("Any.thing", [compressible(), png()], { compress: codec });
      await client.call("Any.thing", [png()], { compress: { codec, force: true } });
      await client.call("Any.thing", [compressible()]);
      const [plain, forced, off] = router.requests;
      expect(plain.slots).toEqual([
        { path: [0], type: "Uint8Array", compression: codec, size: SIZE },
        { path: [1], type: "Uint8Array" },
      ]);
      expect(plain.frames[0].byteLength).toBeLessThan(SIZE / 10);
      expect(plain.frames[1].byteLength).toBe(SIZE);
      expect(forced.slots).toEqual([{ path: [0], type: "Uint8Array", compression: codec, size: SIZE }]);
      expect(off.slots).toEqual([{ path: [0], type: "Uint8Array" }]);
      expect(off.frames[0].byteLength).toBe(SIZE);
    });

    test(`compressed arguments (${codec}) arrive whole at the method through the router`, async () => {
      await cluster.router();
      await cluster.dealer((options) => new Packed(options));
      const client = await cluster.client();
      const data = compressible();
      expect(await client.call("Packed.sha256", [data], { compress: codec })).toBe(digest(data));
    });
  }

  test("@serviceMethod({ compress }) compresses results and chunks: the router forwards the compressed frames; the client gets the values whole", async () => {
    const router = await cluster.router();
    await cluster.dealer((options) => new Packed(options));
    const peer = new Dealer({ logger: null });
    closers.push(() => peer.close());
    peer.connect(router.address);
    await peer.send(encodeMessage("HELLO", { role: "client", version: PROTOCOL_VERSION }));
    await waitFor(peer.receive(), { timeoutMs: 5_000, message: "WELCOME" });
    const call = async (id: number, method: string) => {
      await peer.send(encodeMessage("REQUEST", { id, method }, encodeJsonOrThrow([])));
      const frames = await waitFor(peer.receive(), { timeoutMs: 10_000, message: `the RESULT of ${method}` });
      const message = decodeMessage(frames, "client");
      if (!message.ok || message.kind !== "RESULT") throw new Error(`${method}: no RESULT`);
      return { slots: message.header.binary, sizes: frames.slice(4).map((frame) => frame.byteLength) };
    };
    for (const [id, codec] of [
      [1, "zstd"],
      [2, "gzip"],
    ] as const) {
      const seen = await call(id, `Packed.${codec}Image`);
      expect(seen.slots).toEqual([
        { path: ["image"], type: "Uint8Array", compression: codec, size: SIZE },
        { path: ["photo"], type: "Uint8Array" },
      ]);
      expect(seen.sizes[0]).toBeLessThan(SIZE / 10);
      expect(seen.sizes[1]).toBe(SIZE);
    }
    expect((await call(3, "Packed.forcedImage")).slots).toEqual([{ path: ["photo"], type: "Uint8Array", compression: "zstd", size: SIZE }]);

    const client = await cluster.client();
    for (const method of ["Packed.zstdImage", "Packed.gzipImage"]) {
      const value = await client.invoke<{ image: Uint8Array; photo: Uint8Array }>(method);
      expect(value.image).toBeInstanceOf(Uint8Array);
      expect(digest(value.image)).toBe(digest(compressible()));
      expect(digest(value.photo)).toBe(digest(png()));
    }
    const forced = await client.invoke<{ photo: Uint8Array }>("Packed.forcedImage");
    expect(digest(forced.photo)).toBe(digest(png()));
    let tiles = 0;
    for await (const tile of client.stream<Uint8Array>("Packed.tiles", 3)) {
      expect(digest(tile)).toBe(digest(compressible()));
      tiles++;
    }
    expect(tiles).toBe(3);
  });

  test("a bad compress option fails that call at once with a ValidationError; a bad method option fails the dealer's start", async () => {
    await cluster.router();
    await cluster.dealer((options) => new Packed(options));
    const client = await cluster.client();
    const error = await client
      .call("Packed.sha256", [compressible()], { compress: "brotli" as unknown as "zstd" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain('codec must be "zstd" or "gzip"');
    class BadOption extends ServiceDealer {
      @serviceMethod({ compress: { codec: "gzip", level: 42 } })
      nothing() {}
    }
    const started = await cluster
      .dealerStopped((options) => new BadOption(options))
      .start()
      .catch((e: unknown) => e);
    expect(started).toBeInstanceOf(ValidationError);
    expect((started as Error).message).toContain("nothing.compress.level");
  });
});
