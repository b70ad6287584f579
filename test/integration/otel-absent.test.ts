/**
 * "Nothing breaks without @opentelemetry/api" (an optional peer dependency that this repository
 * installs as a devDependency, so every other test has it). How the package is made absent: a
 * temporary copy of src/ with a node_modules of symlinks to the runtime dependencies only
 * (package.json "dependencies"), run by a child `bun --no-install` with no NODE_PATH; the import
 * in src/util/otel.ts resolves from the copy, finds nothing and fails for real (the child checks
 * that it does). There, a router (HTTP on), a dealer and a client serve a call and a task with an
 * explicit traceparent and tracestate, and the method reads both from its context.
 *
 *   ./node_modules/.bin/bun test test/integration/otel-absent.test.ts
 */
import { afterAll, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { BUN, ROOT } from "../helpers/cluster.ts";
import { uniqueEndpoint, waitFor } from "../helpers/wait.ts";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
const FIXTURE = "test/fixtures/otel-absent-peers.ts";

const copy = mkdtempSync(join(tmpdir(), "voidrail-no-otel-"));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

/** src/, package.json and the fixture, with node_modules holding only the runtime dependencies. */
function copyWithoutOtel(): void {
  cpSync(join(ROOT, "src"), join(copy, "src"), { recursive: true });
  cpSync(join(ROOT, "package.json"), join(copy, "package.json"));
  mkdirSync(join(copy, dirname(FIXTURE)), { recursive: true });
  cpSync(join(ROOT, FIXTURE), join(copy, FIXTURE));
  const { dependencies } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  for (const name of Object.keys(dependencies)) {
    const link = join(copy, "node_modules", name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(realpathSync(join(ROOT, "node_modules", name)), link);
  }
}

test("without @opentelemetry/api, a call and a task with a traceparent work and the method reads it", async () => {
  // Here the package is installed: the copy is what takes it away.
  expect(existsSync(join(ROOT, "node_modules/@opentelemetry/api/package.json"))).toBe(true);
  copyWithoutOtel();
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && name !== "NODE_PATH" && !name.startsWith("VOIDRAIL_")) env[name] = value;
  }
  const child = Bun.spawn([BUN, "--no-install", join(copy, FIXTURE), uniqueEndpoint("ipc"), TRACEPARENT, TRACESTATE], {
    cwd: copy,
    env: { ...env, NO_COLOR: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await waitFor(
    Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]),
    { timeoutMs: 20_000, message: "the child without @opentelemetry/api to finish" },
  ).catch((error: Error) => {
    child.kill("SIGKILL");
    throw error;
  });
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  const report = JSON.parse(stdout.trim());
  expect(report.otelImport).toMatch(/^failed: .*@opentelemetry\/api/);
  expect(report.otelLoaded).toBe(false);
  const seen = { traceparent: TRACEPARENT, tracestate: TRACESTATE };
  expect(report).toMatchObject({ call: seen, task: seen, metricsStatus: 200 });
}, 30_000);
