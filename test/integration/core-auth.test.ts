/**
 * API keys, over tcp and ipc: dealers and clients without a valid key are refused with
 * AuthError, those with one work; the VOIDRAIL_* environment variables configure the same.
 *
 *   ./node_modules/.bin/bun test test/integration/core-auth.test.ts
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { ApiKeyManager, AuthError, ServiceRouter, ValidationError } from "../../src/index.ts";
import { EchoService } from "../fixtures/services.ts";
import { Cluster, TRANSPORTS } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

const AUTH_ENV = ["VOIDRAIL_DEALER_API_KEYS", "VOIDRAIL_CLIENT_API_KEYS", "VOIDRAIL_REQUIRE_AUTH", "VOIDRAIL_API_KEY"] as const;

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error as Error;
  }
}

test("ApiKeyManager.generateKey makes prefixed, dated, random keys", () => {
  const key = ApiKeyManager.generateKey("dealer");
  expect(key).toMatch(/^dealer_\d{6}_[A-Za-z0-9_-]{32,}$/);
  expect(ApiKeyManager.generateKey("client")).toMatch(/^client_\d{6}_[A-Za-z0-9_-]{32,}$/);
  expect(ApiKeyManager.generateKey("dealer")).not.toBe(key);
});

for (const transport of TRANSPORTS) {
  describe(`auth over ${transport}`, () => {
    const cluster = new Cluster(transport);
    const savedEnv: Record<string, string | undefined> = {};
    beforeEach(() => {
      for (const name of AUTH_ENV) {
        savedEnv[name] = process.env[name];
        delete process.env[name];
      }
    });
    afterEach(async () => {
      try {
        await cluster.dispose();
      } finally {
        for (const name of AUTH_ENV) {
          if (savedEnv[name] === undefined) delete process.env[name];
          else process.env[name] = savedEnv[name];
        }
      }
    });

    test("with dealerApiKeys, a dealer without a valid key cannot register; one with a key can", async () => {
      const dealerKey = ApiKeyManager.generateKey("dealer");
      await cluster.router({ dealerApiKeys: [dealerKey] });

      const withoutKey = cluster.dealerStopped((options) => new EchoService(options));
      const noKeyError = await rejectionOf(withoutKey.start());
      expect(noKeyError).toBeInstanceOf(AuthError);
      // The router answers both alike; the dealer knows which of the two it was.
      expect((noKeyError as AuthError).data).toEqual({ reason: "BAD_KEY", keyGiven: false });
      expect(noKeyError.message).toBe("the router requires a dealer API key and none was given");
      expect(withoutKey.registered).toBe(false);

      const wrongKey = cluster.dealerStopped((options) => new EchoService(options), { apiKey: ApiKeyManager.generateKey("dealer") });
      const wrongKeyError = await rejectionOf(wrongKey.start());
      expect(wrongKeyError).toBeInstanceOf(AuthError);
      expect((wrongKeyError as AuthError).data).toEqual({ reason: "BAD_KEY", keyGiven: true });
      expect(wrongKeyError.message).toBe("the router refused this dealer's API key");

      await cluster.dealer((options) => new EchoService(options), { apiKey: dealerKey });
      const client = await cluster.client();
      expect(await client.invoke("EchoService.echo", "in")).toBe("in");
      expect(await client.discoverClusters()).toHaveLength(1);
      expect(await client.getRouterInfo()).toMatchObject({ requireDealerAuth: true, requireClientAuth: false });
    });

    test("a client key does not register a dealer", async () => {
      const clientKey = ApiKeyManager.generateKey("client");
      await cluster.router({ dealerApiKeys: [ApiKeyManager.generateKey("dealer")], clientApiKeys: [clientKey] });
      const dealer = cluster.dealerStopped((options) => new EchoService(options), { apiKey: clientKey });
      expect(await rejectionOf(dealer.start())).toBeInstanceOf(AuthError);
    });

    test("with clientApiKeys, a client without a key gets AuthError on connect(); one with a valid key works", async () => {
      const clientKey = ApiKeyManager.generateKey("client");
      await cluster.router({ clientApiKeys: [clientKey] });
      await cluster.dealer((options) => new EchoService(options));

      const withoutKey = cluster.clientUnconnected();
      const connectError = await rejectionOf(withoutKey.connect());
      expect(connectError).toBeInstanceOf(AuthError);
      expect((connectError as AuthError).data).toEqual({ reason: "BAD_KEY", keyGiven: false });
      expect(connectError.message).toBe("the router requires a client API key and none was given");

      const wrongKey = cluster.clientUnconnected({ apiKey: ApiKeyManager.generateKey("client") });
      const wrongKeyError = await rejectionOf(wrongKey.connect());
      expect(wrongKeyError).toBeInstanceOf(AuthError);
      expect((wrongKeyError as AuthError).data).toEqual({ reason: "BAD_KEY", keyGiven: true });
      expect(wrongKeyError.message).toBe("the router refused this client's API key");

      const withKey = await cluster.client({ apiKey: clientKey });
      expect(await withKey.invoke("EchoService.echo", "welcome")).toBe("welcome");
      expect(await withKey.getRouterInfo()).toMatchObject({ requireDealerAuth: false, requireClientAuth: true });
    });

    test("with clientApiKeys, a client without a key gets AuthError on its first call, and again on the next", async () => {
      await cluster.router({ clientApiKeys: [ApiKeyManager.generateKey("client")] });
      await cluster.dealer((options) => new EchoService(options));
      const client = cluster.clientUnconnected({ timeout: 1 });

      expect(await rejectionOf(client.invoke("EchoService.echo", "first"))).toBeInstanceOf(AuthError);
      expect(await rejectionOf(client.invoke("EchoService.echo", "second"))).toBeInstanceOf(AuthError);
      expect(await rejectionOf(client.discoverServices())).toBeInstanceOf(AuthError);
    });

    test("after a router restart, the dealer and the client authenticate again by themselves", async () => {
      const dealerKey = ApiKeyManager.generateKey("dealer");
      const clientKey = ApiKeyManager.generateKey("client");
      const first = await cluster.router({ dealerApiKeys: [dealerKey], clientApiKeys: [clientKey] });
      const dealer = await cluster.dealer((options) => new EchoService(options), { apiKey: dealerKey });
      const client = await cluster.client({ apiKey: clientKey });
      expect(await client.invoke("EchoService.echo", "before")).toBe("before");

      const address = first.address;
      await first.stop();
      await waitFor(() => !dealer.registered, { timeoutMs: 5_000, message: "the dealer to notice the router is gone" });
      await cluster.router({ address, dealerApiKeys: [dealerKey], clientApiKeys: [clientKey] });

      await waitFor(() => dealer.registered, { timeoutMs: 10_000, message: "the dealer to authenticate and register again" });
      expect(await client.invoke("EchoService.echo", "after")).toBe("after");
    });

    test("VOIDRAIL_REQUIRE_AUTH=true without any key is a configuration error", () => {
      process.env.VOIDRAIL_REQUIRE_AUTH = "true";
      expect(() => new ServiceRouter({ address: "tcp://127.0.0.1:0" })).toThrow(ValidationError);
    });

    test("VOIDRAIL_DEALER_API_KEYS, VOIDRAIL_CLIENT_API_KEYS and VOIDRAIL_API_KEY configure auth", async () => {
      const dealerKeys = [ApiKeyManager.generateKey("dealer"), ApiKeyManager.generateKey("dealer")];
      const clientKey = ApiKeyManager.generateKey("client");
      process.env.VOIDRAIL_DEALER_API_KEYS = ` ${dealerKeys[0]} , ${dealerKeys[1]} `;
      process.env.VOIDRAIL_CLIENT_API_KEYS = clientKey;
      process.env.VOIDRAIL_REQUIRE_AUTH = "true";
      const router = await cluster.router();
      expect(router.requireDealerAuth).toBe(true);
      expect(router.requireClientAuth).toBe(true);

      const keyless = cluster.dealerStopped((options) => new EchoService(options));
      expect(await rejectionOf(keyless.start())).toBeInstanceOf(AuthError);

      process.env.VOIDRAIL_API_KEY = dealerKeys[1];
      await cluster.dealer((options) => new EchoService(options));

      const keylessClient = cluster.clientUnconnected();
      process.env.VOIDRAIL_API_KEY = clientKey;
      const client = await cluster.client();
      expect(await rejectionOf(keylessClient.connect())).toBeInstanceOf(AuthError);
      expect(await client.invoke("EchoService.echo", "env")).toBe("env");
      expect(await client.getRouterInfo()).toMatchObject({ requireDealerAuth: true, requireClientAuth: true, activeDealers: 1 });
    });

    test("VOIDRAIL_REQUIRE_AUTH=false turns auth off even with keys configured", async () => {
      process.env.VOIDRAIL_DEALER_API_KEYS = ApiKeyManager.generateKey("dealer");
      process.env.VOIDRAIL_CLIENT_API_KEYS = ApiKeyManager.generateKey("client");
      process.env.VOIDRAIL_REQUIRE_AUTH = "false";
      await cluster.router();

      await cluster.dealer((options) => new EchoService(options));
      const client = await cluster.client();

      expect(await client.invoke("EchoService.echo", "open")).toBe("open");
      expect(await client.getRouterInfo()).toMatchObject({ requireDealerAuth: false, requireClientAuth: false });
    });
  });
}
