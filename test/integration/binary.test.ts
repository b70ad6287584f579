/**
 * Binary values through the router (protocol revision 3): Uint8Array, Buffer, ArrayBuffer,
 * DataView and typed arrays in arguments, results and stream chunks, at any depth, arrive as
 * their own type (a Buffer as a Uint8Array), as frames beside the JSON; the router forwards them
 * without parsing. Tasks refuse binary values with a clear error for now.
 *
 *   ./node_modules/.bin/bun test test/integration/binary.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { ServiceDealer, serviceMethod, ValidationError } from "../../src/index.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";

class Bytes extends ServiceDealer {
  /** Describes what arrived: each argument's type and contents. */
  @serviceMethod
  inspect(...args: unknown[]) {
    const describe = (value: unknown): unknown => {
      if (ArrayBuffer.isView(value))
        return { type: value.constructor.name, bytes: [...new Uint8Array(value.buffer, value.byteOffset, value.byteLength)] };
      if (value instanceof ArrayBuffer) return { type: "ArrayBuffer", bytes: [...new Uint8Array(value)] };
      if (Array.isArray(value)) return value.map(describe);
      if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describe(v)]));
      return value;
    };
    return args.map(describe);
  }

  @serviceMethod
  echo(value: unknown) {
    return value;
  }

  @serviceMethod
  sha256(data: Uint8Array) {
    return createHash("sha256").update(data).digest("hex");
  }

  @serviceMethod
  zeros(bytes: number) {
    return { image: new Uint8Array(bytes), shape: [bytes] };
  }

  @serviceMethod
  async *tiles(count: number, size: number) {
    for (let i = 0; i < count; i++) yield { index: i, data: new Uint8Array(size).fill(i) };
  }
}

for (const transport of TRANSPORTS) {
  describe(`binary values over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    async function setup() {
      await cluster.router();
      await cluster.dealer((options) => new Bytes(options));
      return cluster.client();
    }

    test("arguments of every binary type arrive as themselves, at any depth", async () => {
      const client = await setup();
      const got = await client.call("Bytes.inspect", [
        new Uint8Array([1, 2, 3]),
        Buffer.from([4, 5]),
        { nested: [new Float32Array([1.5]), { deep: new Int16Array([-2]) }] },
        new Uint8Array([9, 8]).buffer,
        new DataView(new Uint8Array([7]).buffer),
        "text",
      ]);
      expect(got).toEqual([
        { type: "Uint8Array", bytes: [1, 2, 3] },
        { type: "Uint8Array", bytes: [4, 5] },
        {
          nested: [
            { type: "Float32Array", bytes: [...new Uint8Array(new Float32Array([1.5]).buffer)] },
            { deep: { type: "Int16Array", bytes: [254, 255] } },
          ],
        },
        { type: "ArrayBuffer", bytes: [9, 8] },
        { type: "DataView", bytes: [7] },
        "text",
      ]);
    });

    test("results and stream chunks come back as binary values, not objects of bytes", async () => {
      const client = await setup();
      const echoed = await client.invoke<{ a: Float64Array; b: Uint8Array[] }>("Bytes.echo", {
        a: new Float64Array([Math.PI]),
        b: [new Uint8Array([1])],
      });
      expect(echoed.a).toBeInstanceOf(Float64Array);
      expect(echoed.a[0]).toBe(Math.PI);
      expect(echoed.b[0]).toBeInstanceOf(Uint8Array);
      const tiles: { index: number; data: Uint8Array }[] = [];
      for await (const tile of client.stream<{ index: number; data: Uint8Array }>("Bytes.tiles", 5, 1000)) tiles.push(tile);
      expect(tiles.map((t) => [t.index, t.data.length, t.data[999]])).toEqual([0, 1, 2, 3, 4].map((i) => [i, 1000, i]));
    });

    test("8 MiB each way: the bytes arrive whole", async () => {
      const client = await setup();
      const data = new Uint8Array(8 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
      expect(await client.invoke("Bytes.sha256", data)).toBe(createHash("sha256").update(data).digest("hex"));
      const back = await client.invoke<{ image: Uint8Array; shape: number[] }>("Bytes.zeros", 8 * 1024 * 1024);
      expect(back.image).toBeInstanceOf(Uint8Array);
      expect([back.image.length, back.shape[0]]).toEqual([8 * 1024 * 1024, 8 * 1024 * 1024]);
    });

    test("a task refuses binary arguments with a clear ValidationError; nothing is stored", async () => {
      const client = await setup();
      const error = await client.submit("Bytes.sha256", [new Uint8Array([1])]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toContain("cannot hold binary values yet");
      expect((await client.listTasks()).tasks).toEqual([]);
    });
  });
}
