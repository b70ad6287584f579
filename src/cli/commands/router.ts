/** `voidrail router`: runs a ServiceRouter from flags and VOIDRAIL_* variables until SIGINT/SIGTERM. */
import { defineCommand } from "citty";
import {
  applyLogLevel,
  checkFlags,
  connectionArgs,
  EXIT_STORE_UNUSABLE,
  logLevelArg,
  onShutdown,
  curveKeyFlag,
  parseRateLimits,
  parseSeconds,
  rateLimitArg,
  readCurveSecretKeyFile,
  routerEndpoint,
  splitKeys,
  storeArg,
  taskStorePath,
  httpArgs,
  httpOptions,
} from "./_shared.ts";
import { CliError, runCli } from "../errors.ts";

const args = {
  host: { ...connectionArgs.host, description: "Interface to listen on, 0.0.0.0 for all (default 127.0.0.1, env VOIDRAIL_HOST)" },
  port: { ...connectionArgs.port, description: "Port to listen on (default 5555, env VOIDRAIL_PORT)" },
  address: {
    type: "string",
    description: "Full endpoint to bind, e.g. ipc:///tmp/vr.sock; overrides --host/--port (env VOIDRAIL_ROUTER_ADDRESS)",
  },
  mode: {
    type: "string",
    description: "fifo (one call per dealer at a time, arrival order) or load_balance (env VOIDRAIL_ROUTER_MODE)",
    default: process.env.VOIDRAIL_ROUTER_MODE || "fifo",
  },
  "heartbeat-timeout": {
    type: "string",
    description: "Seconds of silence after which a dealer is gone (env VOIDRAIL_HEARTBEAT_TIMEOUT)",
    default: process.env.VOIDRAIL_HEARTBEAT_TIMEOUT || "30",
  },
  "max-queue": { type: "string", description: "Most requests waiting per method (default 10000)" },
  "max-message-size": {
    type: "string",
    description: "Largest message (one call's JSON and binaries) in MiB; bigger fails that call (default 257)",
  },
  "require-auth": { type: "boolean", description: "Require API keys (env VOIDRAIL_REQUIRE_AUTH)" },
  "dealer-keys": { type: "string", description: "Comma-separated keys dealers must present (env VOIDRAIL_DEALER_API_KEYS)" },
  "client-keys": { type: "string", description: "Comma-separated keys clients must present (env VOIDRAIL_CLIENT_API_KEYS)" },
  "curve-secret-key-file": {
    type: "string",
    description: "File holding the router's CURVE secret key: encrypt every connection, refuse NULL peers (env VOIDRAIL_CURVE_SECRET_KEY)",
  },
  "curve-allow-dealers": {
    type: "string",
    description: "Comma-separated CURVE public keys that may register as dealers (env VOIDRAIL_CURVE_ALLOW_DEALERS)",
  },
  "curve-allow-clients": {
    type: "string",
    description: "Comma-separated CURVE public keys that may act as clients (env VOIDRAIL_CURVE_ALLOW_CLIENTS)",
  },
  ...storeArg,
  ...rateLimitArg,
  ...httpArgs,
  "generate-keys": {
    type: "boolean",
    description: "Print new API keys and CURVE key pairs (router, dealer, client) and the commands that use them, then exit",
  },
  out: { type: "string", description: "With --generate-keys: write the CURVE keys as files (mode 0600) into this directory" },
  ...logLevelArg,
} as const;

export default defineCommand({
  meta: { name: "router", description: "Run the router that services and clients connect to" },
  args,
  run: ({ args: parsed, rawArgs }) =>
    runCli(async () => {
      const { "rate-limit": rateLimitFlags } = checkFlags(rawArgs, args, ["rate-limit"]);
      const rateLimits = parseRateLimits(rateLimitFlags);
      const { ServiceRouter } = await import("../../index.ts");
      if (parsed["generate-keys"]) {
        const { generateKeys } = await import("./generate-keys.ts");
        generateKeys(parsed.out);
        return;
      }
      if (parsed.out !== undefined) throw new CliError("--out is for --generate-keys", 2);
      applyLogLevel(parsed["log-level"], "info");
      if (parsed.mode !== "fifo" && parsed.mode !== "load_balance")
        throw new CliError(`--mode must be fifo or load_balance, got "${parsed.mode}"`, 2);
      const heartbeatTimeout = parseSeconds(parsed["heartbeat-timeout"], "--heartbeat-timeout");
      if (heartbeatTimeout < 0.05) throw new CliError("--heartbeat-timeout must be at least 0.05 s", 2);
      const maxQueue = parsed["max-queue"];
      const maxMessageMiB = parsed["max-message-size"];
      if (maxMessageMiB !== undefined && !/^[1-9][0-9]{0,6}$/.test(maxMessageMiB))
        throw new CliError(`--max-message-size must be a whole number of MiB (1 or more), got "${maxMessageMiB}"`, 2);
      const http = httpOptions(parsed);
      const router = new ServiceRouter({
        address: routerEndpoint(parsed),
        routerMode: parsed.mode,
        heartbeatTimeout,
        ...(parsed["require-auth"] !== undefined ? { requireAuth: parsed["require-auth"] } : {}),
        ...(parsed["dealer-keys"] !== undefined ? { dealerApiKeys: splitKeys(parsed["dealer-keys"]) } : {}),
        ...(parsed["client-keys"] !== undefined ? { clientApiKeys: splitKeys(parsed["client-keys"]) } : {}),
        ...(maxQueue !== undefined ? { maxQueueLength: Number.parseInt(maxQueue, 10) } : {}),
        ...(maxMessageMiB !== undefined ? { maxMessageSize: Number(maxMessageMiB) * 1024 * 1024 } : {}),
        taskStore: taskStorePath(parsed.store),
        ...(rateLimits !== undefined ? { rateLimits } : {}),
        ...(http !== undefined ? { http } : {}),
        ...curveRouterFlags(parsed),
      });
      // Signals are handled from before the start: a Ctrl-C right after "listening" must drain, not kill.
      const started = router.start();
      onShutdown(
        async () => {
          await started.catch(() => undefined);
          await router.stop();
          console.error("voidrail: router shutdown complete");
          process.exit(0);
        },
        () => process.exit(130),
      );
      try {
        await started;
      } catch (error) {
        const unusableStore = (error as { code?: unknown }).code === "STORE_ERROR";
        throw new CliError(`cannot start the router: ${(error as Error).message}`, unusableStore ? EXIT_STORE_UNUSABLE : 1);
      }
      await new Promise(() => {});
    }),
});

/** The router's CURVE options from its flags; unset flags leave VOIDRAIL_CURVE_* to decide. */
function curveRouterFlags(parsed: Record<string, unknown>): {
  curveSecretKey?: string;
  curveAllow?: { dealers?: string[]; clients?: string[] };
} {
  const secretFile = parsed["curve-secret-key-file"] as string | undefined;
  const list = (flag: string) => {
    const value = parsed[flag] as string | undefined;
    return value === undefined ? undefined : (splitKeys(value) ?? []).map((key) => curveKeyFlag(key, `--${flag}`));
  };
  const dealers = list("curve-allow-dealers");
  const clients = list("curve-allow-clients");
  const curveAllow =
    dealers !== undefined || clients !== undefined ? { ...(dealers ? { dealers } : {}), ...(clients ? { clients } : {}) } : undefined;
  if (curveAllow && secretFile === undefined && !process.env.VOIDRAIL_CURVE_SECRET_KEY) {
    throw new CliError("--curve-allow-dealers/--curve-allow-clients need --curve-secret-key-file (the router's CURVE secret key)", 2);
  }
  return {
    ...(secretFile !== undefined ? { curveSecretKey: readCurveSecretKeyFile(secretFile, "--curve-secret-key-file") } : {}),
    ...(curveAllow ? { curveAllow } : {}),
  };
}
