import { expect, test } from "bun:test";
import { packMessages, unpackMessages } from "../../src/dealer/message-pack.ts";

test("messages survive packing: frame boundaries, empty frames and messages, binary bytes", () => {
  const messages = [
    [new Uint8Array([1, 2, 3]), new Uint8Array(0), new TextEncoder().encode("VRP1")],
    [],
    [new Uint8Array(70_000).fill(255)],
  ];
  const unpacked = unpackMessages(packMessages(messages));
  expect(unpacked.map((frames) => frames.map((frame) => [...frame]))).toEqual(messages.map((frames) => frames.map((frame) => [...frame])));
});

test("an empty batch packs to a buffer holding only its count", () => {
  expect(unpackMessages(packMessages([]))).toEqual([]);
});
