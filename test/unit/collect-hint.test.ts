/** The router's garbage-collection nudge after large binary frames (src/router/collect-hint.ts). */
import { expect, test } from "bun:test";
import { CollectHint } from "../../src/router/collect-hint.ts";

test("collects once per `everyBytes` of large frames, counting from the last collection", () => {
  let collections = 0;
  const hint = new CollectHint(100, () => collections++);
  hint.note(60);
  expect(collections).toBe(0);
  hint.note(40);
  expect(collections).toBe(1);
  hint.note(99);
  expect(collections).toBe(1);
  hint.note(250);
  expect(collections).toBe(2);
});
