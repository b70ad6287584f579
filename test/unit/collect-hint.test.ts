/** The router's garbage-collection nudge after large binary frames (src/router/collect-hint.ts). */
import { expect, test } from "bun:test";
import { CollectHint } from "../../src/router/collect-hint.ts";

test("collects once per `everyBytes` of large frames while collections are quick", () => {
  let collections = 0;
  const hint = new CollectHint(
    100,
    () => collections++,
    () => 0,
  );
  hint.note(60);
  expect(collections).toBe(0);
  hint.note(40);
  expect(collections).toBe(1);
  hint.note(99);
  expect(collections).toBe(1);
  hint.note(250);
  expect(collections).toBe(2);
});

test("a collection that took T ms (over 4) makes the next wait for T / 4 times as many bytes", () => {
  let clock = 0;
  let collections = 0;
  const hint = new CollectHint(
    100,
    () => {
      collections++;
      clock += 120;
    },
    () => clock,
  );
  hint.note(100);
  expect(collections).toBe(1);
  hint.note(2999);
  expect(collections).toBe(1);
  hint.note(1);
  expect(collections).toBe(2);
});
