import { expect, test } from "bun:test";
import { ClientDealer, ServiceRouter, silentLogger } from "../../src/index.ts";
import { waitFor } from "../helpers/wait.ts";

test("a dealer running a synchronous CPU-bound method for 4x the heartbeat timeout stays alive and answers", async () => {
  const router = new ServiceRouter({ address: "tcp://127.0.0.1:0", heartbeatTimeout: 1, logger: silentLogger });
  await router.start();
  const child = Bun.spawn([process.execPath, "test/fixtures/blocking-dealer.ts", router.address], { stdout: "ignore", stderr: "inherit" });
  const client = new ClientDealer({ routerAddress: router.address, timeout: 30, logger: silentLogger });
  try {
    await client.connect();
    await waitFor(async () => (await client.discoverClusters()).length === 1, {
      timeoutMs: 10_000,
      message: "the blocking dealer never registered",
    });
    const dealerId = (await client.discoverClusters())[0].id;
    expect(await client.invoke("BlockingService.spin", 4000)).toBe(true);
    const clusters = await client.discoverClusters();
    // The same registration throughout: never declared dead, never re-registered.
    expect(clusters.map((c) => c.id)).toEqual([dealerId]);
    expect(clusters[0].counts).toEqual({ dispatched: 1, succeeded: 1, failed: 0 });
  } finally {
    child.kill("SIGKILL");
    await client.close();
    await router.stop();
  }
}, 20_000);
