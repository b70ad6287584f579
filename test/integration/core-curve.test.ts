/**
 * VoidRail over CURVE: the router's key lists grant the dealer and client roles (instead of or
 * on top of API keys), discoverClusters shows each dealer's public key, NULL peers are refused
 * with a clear log line, and a client with the wrong server key fails connect() with AuthError
 * (reason CURVE_REFUSED) well within its connect timeout.
 *
 *   ./node_modules/.bin/bun test test/integration/core-curve.test.ts
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ApiKeyManager, AuthError, ClientDealer, curveKeyPair, ServiceRouter, ValidationError } from "../../src/index.ts";
import type { Logger } from "../../src/util/log.ts";
import { EchoService } from "../fixtures/services.ts";
import { CURVE_TCP, Cluster } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/wait.ts";

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    const value = await promise;
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (error) {
    return error as Error;
  }
}

/** A logger that keeps every line, for asserting on what the router says. */
function recordingLogger(lines: string[]): Logger {
  const keep = (...args: unknown[]) => lines.push(args.map(String).join(" "));
  return { debug: keep, info: keep, warn: keep, error: keep } as unknown as Logger;
}

describe("VoidRail with CURVE", () => {
  const cluster = new Cluster(CURVE_TCP);
  afterEach(() => cluster.dispose());
  const keys = () => cluster.curve!;

  test("key lists grant the roles: listed dealer and client work, and discoverClusters shows the dealer's key", async () => {
    await cluster.router({ curveAllow: { dealers: [keys().dealer.publicKey], clients: [keys().client.publicKey] } });
    const dealer = await cluster.dealer((options) => new EchoService(options));
    expect(dealer.curvePublicKey).toBe(keys().dealer.publicKey);
    const client = await cluster.client();
    expect(await client.call("EchoService.echo", ["secret"])).toBe("secret");
    const clusters = await client.discoverClusters();
    expect(clusters.map((entry) => entry.publicKey)).toEqual([keys().dealer.publicKey]);
  });

  test("a client key cannot register a dealer, and a dealer key cannot make calls", async () => {
    await cluster.router({ curveAllow: { dealers: [keys().dealer.publicKey], clients: [keys().client.publicKey] } });
    const impostor = cluster.dealerStopped((options) => new EchoService(options), { curveSecretKey: keys().client.secretKey });
    const refused = await rejectionOf(impostor.start());
    expect(refused).toBeInstanceOf(AuthError);
    await cluster.dealer((options) => new EchoService(options));
    const dealerAsClient = await cluster.client({ curveSecretKey: keys().dealer.secretKey }).catch((error: Error) => error);
    const error = dealerAsClient instanceof Error ? dealerAsClient : await rejectionOf(dealerAsClient.call("EchoService.echo", [1]));
    expect(error).toBeInstanceOf(AuthError);
  });

  test("a key on neither list is refused in the handshake: start() fails with AuthError CURVE_REFUSED", async () => {
    await cluster.router({ curveAllow: { dealers: [keys().dealer.publicKey], clients: [keys().client.publicKey] } });
    const stranger = cluster.dealerStopped((options) => new EchoService(options), { curveSecretKey: curveKeyPair().secretKey });
    const error = await rejectionOf(stranger.start());
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).data).toEqual({ reason: "CURVE_REFUSED" });
  });

  test("with API keys too, a listed dealer also needs its API key (on top of)", async () => {
    const dealerApiKey = ApiKeyManager.generateKey("dealer");
    await cluster.router({ dealerApiKeys: [dealerApiKey], curveAllow: { dealers: [keys().dealer.publicKey] } });
    const withoutApiKey = cluster.dealerStopped((options) => new EchoService(options));
    expect(await rejectionOf(withoutApiKey.start())).toBeInstanceOf(AuthError);
    await cluster.dealer((options) => new EchoService(options), { apiKey: dealerApiKey });
    // Clients are open (no client list): any key the handshake admits may call.
    const client = await cluster.client({ curveSecretKey: curveKeyPair().secretKey });
    expect(await client.call("EchoService.echo", [2])).toBe(2);
  });

  test("a client with the wrong server key fails connect() with a typed error naming the cause, within its timeout", async () => {
    await cluster.router();
    const connectTimeout = 10;
    const client = cluster.clientUnconnected({ curveServerKey: curveKeyPair().publicKey, connectTimeout });
    const started = Date.now();
    const error = await rejectionOf(waitFor(client.connect(), { timeoutMs: connectTimeout * 1000, message: "connect() to fail" }));
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).data).toEqual({ reason: "CURVE_REFUSED" });
    expect(error.message).toContain("check the server key (curveServerKey)");
    expect(Date.now() - started).toBeLessThan(connectTimeout * 1000);
  });

  test("a NULL client is refused with a log line on the router, and its connect() fails typed", async () => {
    const lines: string[] = [];
    await cluster.router({ logger: recordingLogger(lines) });
    const plain = new ClientDealer({ routerAddress: cluster.address, connectTimeout: 10 });
    try {
      const error = await rejectionOf(waitFor(plain.connect(), { timeoutMs: 10_000, message: "connect() to fail" }));
      expect(error).toBeInstanceOf(AuthError);
      expect(error.message).toMatch(/CURVE/);
      await waitFor(() => lines.some((line) => line.includes("peer uses the NULL mechanism; this socket uses CURVE")), {
        timeoutMs: 5_000,
        message: "the router's log line about the NULL peer",
      });
    } finally {
      await plain.close();
    }
  });

  test("bad CURVE options are refused with a ValidationError naming the field", () => {
    expect(() => new ServiceRouter({ curveSecretKey: "not a key" })).toThrow(ValidationError);
    expect(() => new ServiceRouter({ curveAllow: { dealers: [keys().dealer.publicKey] } })).toThrow(/curveAllow needs curveSecretKey/);
    expect(() => new ClientDealer({ curveSecretKey: keys().client.secretKey })).toThrow(/curveSecretKey needs curveServerKey/);
  });
});
