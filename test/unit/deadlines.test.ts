import { expect, test } from "bun:test";
import { type Deadline, Deadlines } from "../../src/util/deadlines.ts";

test("deadlines fire in deadline order, whatever the order they were added in", async () => {
  const deadlines = new Deadlines();
  const fired: Deadline[] = [];
  const added: Deadline[] = [];
  const done = new Promise<void>((resolve) => {
    for (const delay of [30, 5, 20, 10, 0, 25, 15]) {
      const deadline = deadlines.add(delay, () => {
        fired.push(deadline);
        if (fired.length === 7) resolve();
      });
      added.push(deadline);
    }
  });
  await done;
  // By the time each was due (`at`), not by its delay: on a loaded machine the adds themselves
  // can be milliseconds apart. Equal times keep no promised order, so compare times.
  expect(fired.map((deadline) => deadline.at)).toEqual(added.map((deadline) => deadline.at).sort((a, b) => a - b));
  expect(new Set(fired).size).toBe(7);
});

test("a cancelled deadline never fires, and cancelling the earliest re-arms for the next", async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  const first = deadlines.add(5, () => fired.push("first"));
  await new Promise<void>((resolve) =>
    deadlines.add(15, () => {
      fired.push("second");
      resolve();
    }),
  );
  first.cancel();
  expect(fired).toEqual(["first", "second"]);
  const third = deadlines.add(1, () => fired.push("third"));
  third.cancel();
  await new Promise<void>((resolve) =>
    deadlines.add(10, () => {
      fired.push("fourth");
      resolve();
    }),
  );
  expect(fired).toEqual(["first", "second", "fourth"]);
});

test("cancelled entries are swept: the heap stays proportional to live deadlines", () => {
  const deadlines = new Deadlines();
  for (let i = 0; i < 100_000; i++) deadlines.add(60_000, () => {}).cancel();
  expect(deadlines.size).toBe(0);
  expect((deadlines as unknown as { heap: unknown[] }).heap.length).toBeLessThan(5000);
  deadlines.clear();
});
