/** The router's garbage-collection nudge after large binary frames (src/router/collect-hint.ts). */
import { expect, test } from "bun:test";
import { CollectHint } from "../../src/router/collect-hint.ts";

/** A hint whose collections take `collectMs` on a clock the test moves. */
function setup(collectMs: number) {
  const state = { clock: 1000, collections: 0 };
  const hint = new CollectHint(
    100,
    () => {
      state.collections++;
      state.clock += collectMs;
    },
    () => state.clock,
  );
  return { hint, state };
}

test("collects after every `everyBytes` of large frames, at most once per 100 ms", () => {
  const { hint, state } = setup(1);
  hint.note(60);
  expect(state.collections).toBe(0);
  hint.note(40);
  expect(state.collections).toBe(1);
  hint.note(500);
  expect(state.collections).toBe(1); // too soon after the last
  state.clock += 100;
  hint.note(1);
  expect(state.collections).toBe(2);
  state.clock += 200;
  hint.note(99);
  expect(state.collections).toBe(2); // not enough bytes since the last
});

test("a collection that took T ms is followed by none for 10 × T", () => {
  const { hint, state } = setup(30);
  hint.note(100);
  expect(state.collections).toBe(1);
  state.clock += 299;
  hint.note(100);
  expect(state.collections).toBe(1);
  state.clock += 1;
  hint.note(1);
  expect(state.collections).toBe(2);
});
