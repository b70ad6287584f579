/**
 * Large binary payloads through the router (issue 12): 16 MiB and 256 MiB round trips over tcp
 * and ipc, and the router's bound (`maxMessageSize`): a call over it fails alone with a clear
 * ValidationError naming its size and the bound, and the connection and the next call carry on,
 * whether the client refuses it before sending (it knows the bound from WELCOME) or the router
 * skips it as it arrives (a client that does not check, here a raw VRP1 peer).
 *
 *   ./node_modules/.bin/bun test test/integration/large-payloads.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { decodeMessage, encodeJsonOrThrow, encodeMessage, PROTOCOL_VERSION } from "../../src/protocol/index.ts";
import { ServiceDealer, serviceMethod, ValidationError } from "../../src/index.ts";
import { Dealer, FrameParts, Router } from "../../src/zmtp/index.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const MiB = 1024 * 1024;

class Blobs extends ServiceDealer {
  @serviceMethod
  echo(value: unknown) {
    return value;
  }

  @serviceMethod
  length(data: Uint8Array) {
    return data.byteLength;
  }

  @serviceMethod
  add(a: number, b: number) {
    return a + b;
  }
}

/** Bytes that differ along their length, so a shifted or truncated copy does not compare equal. */
function patterned(bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) data[i] = (i >>> 12) & 0xff;
  data[bytes - 1] = 0xab;
  return data;
}

const digest = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

for (const transport of TRANSPORTS) {
  test(`a voidrail/zmtp Router with keepPartsAbove relays a 32 MiB frame over ${transport} as the pieces it arrived in, and it arrives whole`, async () => {
    const relay = new Router({ keepPartsAbove: MiB, logger: null });
    const [sender, receiver] = [new Dealer({ routingId: "sender", logger: null }), new Dealer({ routingId: "receiver", logger: null })];
    try {
      await relay.bind(uniqueEndpoint(transport));
      for (const dealer of [sender, receiver]) dealer.connect(relay.lastEndpoint!);
      await receiver.send("here");
      await waitFor(relay.receive(), { timeoutMs: 5_000, message: "the receiver to say it is there" });
      const sent = patterned(32 * MiB);
      await sender.send(["small", sent]);
      const [, small, big] = await waitFor(relay.receive(), { timeoutMs: 20_000, message: "the 32 MiB message at the relay" });
      expect(small.toString()).toBe("small");
      expect(big).toBeInstanceOf(FrameParts);
      expect((big as unknown as FrameParts).parts.length).toBeGreaterThan(1);
      await relay.send(["receiver", small, big]);
      const [smallBack, bigBack] = await waitFor(receiver.receive(), { timeoutMs: 20_000, message: "the relayed message" });
      expect(smallBack.toString()).toBe("small");
      expect(bigBack).toBeInstanceOf(Buffer);
      expect(digest(bigBack)).toBe(digest(sent));
      // Small FrameParts an application builds itself go out as their bytes too.
      await relay.send(["receiver", new FrameParts([Buffer.from("fra"), Buffer.from("me")], 5)]);
      const [joined] = await waitFor(receiver.receive(), { timeoutMs: 5_000, message: "the small FrameParts" });
      expect(joined.toString()).toBe("frame");
    } finally {
      for (const socket of [sender, receiver, relay]) socket.close();
    }
  });

  describe(`large binaries over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    for (const size of [16 * MiB, 256 * MiB]) {
      test(`a ${size / MiB} MiB binary goes to the method and comes back whole`, async () => {
        await cluster.router();
        await cluster.dealer((options) => new Blobs(options));
        const client = await cluster.client({ timeout: 120 });
        const sent = patterned(size);
        const sentDigest = digest(sent);
        const back = await client.invoke<{ data: Uint8Array; size: number }>("Blobs.echo", { data: sent, size });
        expect(back.data).toBeInstanceOf(Uint8Array);
        expect(back.size).toBe(size);
        expect(back.data.byteLength).toBe(size);
        expect(digest(back.data)).toBe(sentDigest);
      }, 180_000);
    }

    test("a 4 MiB JSON argument and result (no binary values) go through whole", async () => {
      await cluster.router();
      await cluster.dealer((options) => new Blobs(options));
      const client = await cluster.client();
      const text = "voidrail ".repeat((4 * MiB) / 9);
      expect(await client.invoke("Blobs.echo", { text })).toEqual({ text });
    });

    test("a call over the router's maxMessageSize is refused before it is sent, naming its size and the bound; the next call works", async () => {
      await cluster.router({ maxMessageSize: 1 * MiB });
      await cluster.dealer((options) => new Blobs(options));
      const client = await cluster.client();
      const error = await client.invoke("Blobs.length", new Uint8Array(2 * MiB)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).message).toBe(
        `the arguments are ${2 * MiB + 6} bytes, more than the router accepts in one message (${MiB} bytes)`,
      );
      expect((error as ValidationError).data).toEqual({ path: "args", size: 2 * MiB + 6, limit: MiB });
      expect(await client.invoke("Blobs.length", new Uint8Array(512 * 1024))).toBe(512 * 1024);
      const streamError = await (async () => {
        for await (const _ of client.stream("Blobs.length", new Uint8Array(2 * MiB))) return undefined;
      })().catch((e: unknown) => e);
      expect(streamError).toBeInstanceOf(ValidationError);
      expect(await client.invoke("Blobs.add", 2, 3)).toBe(5);
    });

    test("a REQUEST over maxMessageSize from a peer that does not check is skipped by the router and answered with VALIDATION_ERROR for its id; the connection carries on", async () => {
      const router = await cluster.router({ maxMessageSize: 1 * MiB });
      await cluster.dealer((options) => new Blobs(options));
      const peer = new Dealer({ logger: null });
      try {
        peer.connect(router.address);
        await peer.send(encodeMessage("HELLO", { role: "client", version: PROTOCOL_VERSION }));
        const welcome = decodeMessage(await waitFor(peer.receive(), { timeoutMs: 5_000, message: "WELCOME" }), "client");
        expect(welcome.ok && welcome.kind === "WELCOME" && welcome.header.maxMessageSize).toBe(MiB);
        // 4 MiB in one binary frame: past the bound after the header, which the router reads.
        const big = encodeMessage(
          "REQUEST",
          { id: 7, method: "Blobs.length", binary: [{ path: [0], type: "Uint8Array" }] },
          encodeJsonOrThrow([null]),
          [new Uint8Array(4 * MiB)],
        );
        await peer.send(big);
        await peer.send(encodeMessage("REQUEST", { id: 8, method: "Blobs.add" }, encodeJsonOrThrow([20, 22])));
        const answers = new Map<number, ReturnType<typeof decodeMessage<"client">>>();
        while (answers.size < 2) {
          const message = decodeMessage(await waitFor(peer.receive(), { timeoutMs: 10_000, message: "the answers to 7 and 8" }), "client");
          if (!message.ok || !("id" in message.header) || typeof message.header.id !== "number") throw new Error("unexpected answer");
          answers.set(message.header.id, message);
        }
        const refused = answers.get(7)!;
        expect(refused.ok && refused.kind).toBe("ERROR");
        if (refused.ok && refused.kind === "ERROR") {
          expect(refused.header.code).toBe("VALIDATION_ERROR");
          expect(refused.header.message).toContain(`maxMessageSize ${MiB} bytes`);
          expect(refused.header.data).toMatchObject({ path: "args", limit: MiB });
          expect((refused.header.data as { size: number }).size).toBeGreaterThan(4 * MiB);
        }
        const added = answers.get(8)!;
        expect(added.ok && added.kind === "RESULT" && Buffer.from(added.payload).toString()).toBe("42");
        expect(peer.peerCount).toBe(1);
      } finally {
        peer.close();
      }
    });

    test("a RESULT over maxMessageSize from a dealer that does not check fails that call with VALIDATION_ERROR; the dealer's slot is free for the next call", async () => {
      const router = await cluster.router({ maxMessageSize: 1 * MiB });
      const rogue = await registerRogueDealer(router.address, "Rogue.blob", false);
      try {
        const client = await cluster.client();
        // FIFO: one call at a time per dealer, so the second call runs only once the first freed the slot.
        const first = client.invoke("Rogue.blob", 1).catch((e: unknown) => e);
        const second = client.invoke("Rogue.blob", 2);
        for (const size of [3 * MiB, 10]) {
          const request = decodeMessage(await waitFor(rogue.receive(), { timeoutMs: 5_000, message: "a REQUEST" }), "dealer");
          if (!request.ok || request.kind !== "REQUEST") throw new Error("expected a REQUEST");
          await rogue.send(
            encodeMessage("RESULT", { id: request.header.id, binary: [{ path: [], type: "Uint8Array" }] }, encodeJsonOrThrow(null), [
              new Uint8Array(size),
            ]),
          );
        }
        const error = await first;
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).data).toMatchObject({ path: "result", limit: MiB });
        expect(((await second) as Uint8Array).byteLength).toBe(10);
      } finally {
        rogue.close();
      }
    });

    test("a CHUNK over maxMessageSize fails that stream with VALIDATION_ERROR and its dealer is told to stop (CANCEL)", async () => {
      const router = await cluster.router({ maxMessageSize: 1 * MiB });
      const rogue = await registerRogueDealer(router.address, "Rogue.tiles", true);
      try {
        const client = await cluster.client();
        const consumed = (async () => {
          for await (const _ of client.stream("Rogue.tiles")) return "a chunk arrived";
          return "the stream ended";
        })().catch((e: unknown) => e);
        const request = decodeMessage(await waitFor(rogue.receive(), { timeoutMs: 5_000, message: "the REQUEST" }), "dealer");
        if (!request.ok || request.kind !== "REQUEST") throw new Error("expected a REQUEST");
        const id = request.header.id;
        await rogue.send(
          encodeMessage("CHUNK", { id, seq: 0, binary: [{ path: [], type: "Uint8Array" }] }, encodeJsonOrThrow(null), [
            new Uint8Array(2 * MiB),
          ]),
        );
        const error = await waitFor(consumed, { timeoutMs: 10_000, message: "the stream to fail" });
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).data).toMatchObject({ path: "chunk", limit: MiB });
        const cancel = decodeMessage(await waitFor(rogue.receive(), { timeoutMs: 5_000, message: "the CANCEL" }), "dealer");
        expect(cancel.ok && cancel.kind === "CANCEL" && cancel.header.id).toBe(id);
      } finally {
        rogue.close();
      }
    });
  });
}

/** A raw dealer that registers `method` and answers nothing on its own: the test writes its replies. */
async function registerRogueDealer(address: string, method: string, stream: boolean): Promise<Dealer> {
  const rogue = new Dealer({ logger: null });
  rogue.connect(address);
  await rogue.send(
    encodeMessage("HELLO", { role: "dealer", version: PROTOCOL_VERSION, service: "Rogue", methods: { [method]: { stream } } }),
  );
  await waitFor(rogue.receive(), { timeoutMs: 5_000, message: "the rogue dealer's WELCOME" });
  return rogue;
}
