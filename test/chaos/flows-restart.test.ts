/**
 * Workflows across a router SIGKILL: a chain killed while a middle step runs, and a chord killed
 * while its group is half done, each with a callback; then a new router on the same store file
 * and address. The flow carries on from the steps that had not finished, no step the router had
 * recorded as finished runs again, the results still pass along, and each callback (and the
 * chord's callback) runs exactly once.
 *
 *   ./node_modules/.bin/bun test test/chaos/flows-restart.test.ts
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ClientDealer, chain, chord, type FlowInfo, task } from "../../src/index.ts";
import { waitFor } from "../helpers/wait.ts";
import type { DealerChild, RouterProcess } from "./lib/processes.ts";
import { Stage } from "./lib/stage.ts";

const stage = new Stage();
const dir = mkdtempSync(join(tmpdir(), "voidrail-flows-chaos-"));
afterEach(() => stage.dispose());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FINAL = new Set(["succeeded", "failed", "revoked", "expired"]);

function startsOf(dealer: DealerChild, tag: string): number {
  return dealer.named("started").filter((event) => event.tag === tag).length;
}

/**
 * The dealer's reports come on its stdout, which this process may read after the router's
 * answers: wait until each tag has reported `event` before counting starts.
 */
function reported(dealer: DealerChild, event: string, tags: string[]): Promise<void> {
  return waitFor(() => tags.every((tag) => dealer.named(event).some((e) => e.tag === tag)), {
    timeoutMs: 30_000,
    message: `the dealer to report ${event} for ${tags.join(", ")}`,
  });
}

/** Every task node of a flow tree, with its state. */
function leaves(info: FlowInfo, out: FlowInfo[] = []): FlowInfo[] {
  if (info.kind === "task") out.push(info);
  for (const child of [...(info.steps ?? []), ...(info.members ?? []), info.group, info.callback, info.onSuccess, info.onFailure]) {
    if (child) leaves(child, out);
  }
  return out;
}

async function killAndRestart(router: RouterProcess, store: string): Promise<{ router: RouterProcess; client: ClientDealer }> {
  const address = router.address;
  router.kill("SIGKILL");
  await router.exitedWithin(5_000);
  stage.forget(router);
  const next = await stage.router({ address, heartbeatTimeout: 2, taskStore: store });
  return { router: next, client: await stage.client(address, { timeout: 30 }) };
}

async function settled(client: ClientDealer, flowId: string): Promise<FlowInfo> {
  let tree: FlowInfo | undefined;
  await waitFor(
    async () => {
      tree = await client.getFlow(flowId);
      return FINAL.has(tree.state ?? "") && leaves(tree).every((leaf) => FINAL.has(leaf.state ?? ""));
    },
    { timeoutMs: 60_000, message: `flow ${flowId} and its callbacks to finish` },
  );
  return tree!;
}

test("router SIGKILL mid-chain: the chain carries on from the step that was running; finished steps never run again; the callback fires once", async () => {
  const store = join(dir, "chain.db");
  const router = await stage.router({ heartbeatTimeout: 2, taskStore: store });
  const dealer = await stage.dealer(router.address, "FlowService", { dealer: { maxConcurrent: 4 } });
  const client = await stage.client(router.address, { timeout: 30 });
  const steps = ["s0", "s1", "s2", "s3", "s4"];
  const flow = await client.submitFlow(
    chain(task("FlowService.step", ["s0", 0]), ...steps.slice(1).map((tag) => task("FlowService.step", [tag, tag === "s2" ? 3_000 : 0]))),
    { onSuccess: task("FlowService.step", ["callback", 0]) },
  );
  await waitFor(() => startsOf(dealer, "s2") === 1, { timeoutMs: 30_000, message: "step s2 to start" });
  const before = leaves(await client.getFlow(flow.id));
  const finishedBefore = before.filter((leaf) => leaf.state === "succeeded").map((leaf) => leaf.id);
  expect(finishedBefore.length).toBeGreaterThanOrEqual(2); // s0 and s1

  const restarted = await killAndRestart(router, store);
  expect(await restarted.client.waitTask(flow.id, { timeout: 60 })).toBe("s0,s1,s2,s3,s4,");
  const after = await settled(restarted.client, flow.id);
  console.log(`[chaos] chain across a router SIGKILL: ${JSON.stringify(leaves(after).map((leaf) => leaf.state))}`);
  await reported(dealer, "finished", [...steps, "callback"]);

  for (const tag of ["s0", "s1", "s3", "s4", "callback"]) expect({ tag, starts: startsOf(dealer, tag) }).toEqual({ tag, starts: 1 });
  // s2 was cut off by the kill: it runs once more (a lost attempt), never more. (On a machine so
  // loaded that s2 had finished before the kill, it must not have run again.)
  const s2Finished = finishedBefore.includes(before[2].id);
  expect(startsOf(dealer, "s2")).toBe(s2Finished ? 1 : 2);
  const byId = new Map(leaves(after).map((leaf) => [leaf.id, leaf]));
  for (const id of finishedBefore) expect(byId.get(id)?.state).toBe("succeeded");
  expect(after.onSuccess?.state).toBe("succeeded");
  const s2 = await restarted.client.getTask(after.steps![2].id);
  expect(s2).toMatchObject(s2Finished ? { state: "succeeded", attempts: 1 } : { state: "succeeded", attempts: 2, lostAttempts: 1 });
}, 120_000);

test("router SIGKILL mid-chord: the group finishes, no finished member runs again, the chord callback and the flow's callback fire once", async () => {
  const store = join(dir, "chord.db");
  const router = await stage.router({ heartbeatTimeout: 2, taskStore: store });
  const dealer = await stage.dealer(router.address, "FlowService", { dealer: { maxConcurrent: 2 } });
  const client = await stage.client(router.address, { timeout: 30 });
  const members = Array.from({ length: 16 }, (_, i) => `m${i}`);
  const flow = await client.submitFlow(
    chord(
      members.map((tag) => task("FlowService.step", [tag, 300])),
      task("FlowService.gather", ["gather"]),
    ),
    { onSuccess: task("FlowService.step", ["callback", 0]), onFailure: task("FlowService.step", ["never", 0]) },
  );
  await waitFor(async () => leaves(await client.getFlow(flow.id)).filter((leaf) => leaf.state === "succeeded").length >= 4, {
    timeoutMs: 30_000,
    message: "four members to succeed",
  });
  const before = leaves(await client.getFlow(flow.id));
  const finishedBefore = before.filter((leaf) => leaf.state === "succeeded");
  const startsAtKill = new Map(members.map((tag) => [tag, startsOf(dealer, tag)]));

  const restarted = await killAndRestart(router, store);
  expect(await restarted.client.waitTask(flow.id, { timeout: 60 })).toBe(members.length);
  const after = await settled(restarted.client, flow.id);
  console.log(`[chaos] chord across a router SIGKILL: ${finishedBefore.length} of ${members.length} members had finished at the kill`);
  await reported(dealer, "finished", [...members, "callback"]);
  await reported(dealer, "started", ["gather"]);

  expect(startsOf(dealer, "gather")).toBe(1);
  expect(dealer.named("started").find((event) => event.tag === "gather")?.count).toBe(members.length);
  expect(startsOf(dealer, "callback")).toBe(1);
  expect(startsOf(dealer, "never")).toBe(0);
  expect(after.onFailure?.state).toBe("revoked");
  const byId = new Map(leaves(after).map((leaf) => [leaf.id, leaf]));
  for (const leaf of finishedBefore) expect(byId.get(leaf.id)?.state).toBe("succeeded");
  const memberNodes = after.group!.members!;
  memberNodes.forEach((node, i) => {
    const tag = members[i];
    const wasFinished = finishedBefore.some((leaf) => leaf.id === node.id);
    // A finished member never starts again; one cut off by the kill starts once more; the rest once.
    if (wasFinished) expect({ tag, starts: startsOf(dealer, tag) }).toEqual({ tag, starts: startsAtKill.get(tag)! });
    else expect(startsOf(dealer, tag)).toBeLessThanOrEqual((startsAtKill.get(tag) ?? 0) + 1);
    expect(node.state).toBe("succeeded");
  });
}, 120_000);
