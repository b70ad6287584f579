/** ServiceRouter.events through real sockets: what a metrics or task listener hears of calls and dealers. */
import { afterEach, describe, expect, test } from "bun:test";
import { NoSuchMethodError } from "../../src/index.ts";
import { EchoService } from "../fixtures/services.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

for (const transport of TRANSPORTS) {
  describe(`router events over ${transport}`, () => {
    const cluster = new Cluster(transport);
    afterEach(() => cluster.dispose());

    test("a call is dispatched and finishes with its outcome; a dealer registers, drains and is lost", async () => {
      const router = await cluster.router();
      const heard: string[] = [];
      router.events.on("dealer.registered", (dealer) => heard.push(`registered ${dealer.service}`));
      router.events.on("dealer.draining", (dealer) => heard.push(`draining ${dealer.service}`));
      router.events.on("dealer.lost", ({ dealer, reason }) => heard.push(`lost ${dealer.service} (${reason})`));
      router.events.on("call.dispatched", (call) => heard.push(`dispatched ${call.method} to ${call.dealer?.id}`));
      router.events.on("call.finished", (call) => heard.push(`finished ${call.method} ${call.outcome}`));
      const echo = await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();
      expect(await client.invoke("EchoService.echo", "hi")).toBe("hi");
      await expect(client.invoke("Nobody.here")).rejects.toBeInstanceOf(NoSuchMethodError);
      await echo.stop();
      await waitFor(() => heard.some((line) => line.startsWith("lost")), { timeoutMs: 5000, message: "dealer.lost after stop()" });
      expect(heard).toEqual([
        "registered EchoService",
        "dispatched EchoService.echo to EchoService-1",
        "finished EchoService.echo RESULT",
        "finished Nobody.here NO_SUCH_METHOD",
        "draining EchoService",
        "lost EchoService (unregistered)",
      ]);
    });

    test("a listener that throws is logged and the call still completes; after off() it hears nothing", async () => {
      const errors: string[] = [];
      const router = await cluster.router({ logger: { error: (line) => errors.push(line), warn() {}, info() {} } });
      const off = router.events.on("call.finished", () => {
        throw new Error("listener bug");
      });
      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();
      expect(await client.invoke("EchoService.echo", 1)).toBe(1);
      expect(errors.filter((line) => line.includes("listener bug")).length).toBe(1);
      off();
      expect(router.events.has("call.finished")).toBe(false);
      expect(await client.invoke("EchoService.echo", 2)).toBe(2);
      expect(errors.filter((line) => line.includes("listener bug")).length).toBe(1);
    });
  });
}
