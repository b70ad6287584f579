/**
 * CURVE from the compiled binary: `voidrail router --generate-keys --out DIR` writes key files
 * (mode 0600) and prints the commands that use them; those commands run: a CURVE router with
 * key lists, a dealer (2 supervised instances, keys passed by environment) and a client call.
 * A client with the wrong server key, or without CURVE, fails with one line naming the cause.
 *
 *   ./node_modules/.bin/bun test test/e2e/curve-cli.test.ts
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary, expectOneLineError, freePort, killAll, runCli, runCliOk, spawnCli } from "../helpers/voidrail-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "voidrail-curve-keys-"));
beforeAll(() => buildBinary(), 120_000);
afterEach(() => killAll());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = (role: string, kind: "public" | "secret") => readFileSync(join(dir, `${role}.${kind}`), "utf8").trim();

describe("voidrail with CURVE", () => {
  test("--generate-keys --out DIR writes 0600 key files and prints commands that work", async () => {
    const printed = await runCliOk(["router", "--generate-keys", "--out", join(dir, "keys")]);
    for (const role of ["router", "dealer", "client"]) {
      for (const kind of ["secret", "public"]) {
        const file = join(dir, "keys", `${role}.${kind}`);
        expect(statSync(file).mode & 0o777).toBe(0o600);
        expect(readFileSync(file, "utf8").trim()).toHaveLength(40);
      }
      expect(printed).toContain(`CURVE ${role} public key: ${readFileSync(join(dir, "keys", `${role}.public`), "utf8").trim()}`);
    }
    expect(printed).not.toContain(readFileSync(join(dir, "keys", "router.secret"), "utf8").trim());
    expect(printed).toMatch(
      /voidrail router --curve-secret-key-file \S+router\.secret --curve-allow-dealers \S{40} --curve-allow-clients \S{40}/,
    );
    const again = await runCli(["router", "--generate-keys", "--out", join(dir, "keys")]);
    expectOneLineError(again, /exists: not overwriting a key/);
  });

  test("router, dealer and client run on the generated keys; wrong or missing server keys fail in one line", async () => {
    await runCliOk(["router", "--generate-keys", "--out", dir]);
    const port = String(await freePort());
    const router = spawnCli([
      "router",
      "--port",
      port,
      "--curve-secret-key-file",
      join(dir, "router.secret"),
      "--curve-allow-dealers",
      key("dealer", "public"),
      "--curve-allow-clients",
      key("client", "public"),
    ]);
    await router.waitForOutput(`CURVE public key ${key("router", "public")}`);
    const dealer = spawnCli([
      "dealer",
      "--module",
      "examples/services.ts",
      "--port",
      port,
      "--instances",
      "2",
      "--curve-server-key",
      key("router", "public"),
      "--curve-secret-key-file",
      join(dir, "dealer.secret"),
    ]);
    await dealer.waitForOutput(/registered as EchoService-\d+/, { count: 2, timeoutMs: 20_000 });
    const clientFlags = [
      "--port",
      port,
      "--curve-server-key",
      key("router", "public"),
      "--curve-secret-key-file",
      join(dir, "client.secret"),
    ];
    const answer = await runCliOk(["client", "--call", "EchoService.echo", "--args", '["over curve"]', ...clientFlags]);
    expect(answer).toContain("over curve");
    const clusters = JSON.parse(await runCliOk(["client", "--clusters", "--json", ...clientFlags])) as { publicKey?: string }[];
    expect(clusters.map((c) => c.publicKey)).toEqual([key("dealer", "public"), key("dealer", "public")]);

    const wrong = await runCli(
      ["client", "--list", "--port", port, "--connect-timeout", "10", "--curve-server-key", key("client", "public")],
      {
        timeoutMs: 15_000,
      },
    );
    expectOneLineError(wrong, /CURVE handshake .* was refused: check the server key/);
    const plain = await runCli(["client", "--list", "--port", port, "--connect-timeout", "10"], { timeoutMs: 15_000 });
    expectOneLineError(plain, /CURVE/);
    await router.waitForOutput("peer uses the NULL mechanism; this socket uses CURVE");
    const badFile = await runCli([
      "client",
      "--list",
      "--port",
      port,
      "--curve-server-key",
      key("router", "public"),
      "--curve-secret-key-file",
      join(dir, "router.public.missing"),
    ]);
    expectOneLineError(badFile, /cannot read --curve-secret-key-file/);
  }, 60_000);
});
