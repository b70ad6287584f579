/** Argument fragments and helpers shared by the subcommands. */
import { readFileSync } from "node:fs";
import type { ArgsDef } from "citty";
import { CliError } from "../errors.ts";

const env = process.env;

/**
 * Where to find the router: --address, or --host/--port. No citty defaults here: routerEndpoint
 * must see whether --host/--port were given, so that they beat VOIDRAIL_ROUTER_ADDRESS.
 */
export const connectionArgs = {
  host: { type: "string", description: "Router host (default 127.0.0.1, env VOIDRAIL_HOST)" },
  port: { type: "string", description: "Router port (default 5555, env VOIDRAIL_PORT)" },
  address: {
    type: "string",
    description: "Full router endpoint, e.g. ipc:///tmp/vr.sock; overrides --host/--port (env VOIDRAIL_ROUTER_ADDRESS)",
  },
} as const satisfies ArgsDef;

export const apiKeyArg = {
  "api-key": { type: "string", description: "API key (env VOIDRAIL_API_KEY)" },
} as const satisfies ArgsDef;

/** CURVE for a dealer or client: the router's public key, and our secret key from a file (a key in argv shows in `ps`). */
export const curveClientArgs = {
  "curve-server-key": {
    type: "string",
    description: "The router's CURVE public key (40 Z85 characters): encrypt the connection (env VOIDRAIL_CURVE_SERVER_KEY)",
  },
  "curve-secret-key-file": {
    type: "string",
    description: "File holding this peer's CURVE secret key (its public key is its identity; env VOIDRAIL_CURVE_SECRET_KEY)",
  },
} as const satisfies ArgsDef;

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

/**
 * Reads a CURVE secret key file: the 40-character Z85 key on a line of its own (what
 * `voidrail router --generate-keys --out DIR` writes), or a libzmq/pyzmq certificate's
 * `secret-key = "..."` line. Anything else is a one-line CliError.
 */
export function readCurveSecretKeyFile(path: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${flag} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 2);
  }
  const certificate = /secret-key\s*=\s*"([^"]{40})"/.exec(text);
  const candidates = certificate
    ? [certificate[1]]
    : text
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== "" && !line.startsWith("#"));
  const key = candidates.find((line) => Z85_KEY.test(line));
  if (key === undefined || (!certificate && candidates.length !== 1)) {
    throw new CliError(`${flag} ${path} does not hold one CURVE secret key (40 Z85 characters on a line of its own)`, 2);
  }
  return key;
}

/** A CURVE public key given on the command line, checked. */
export function curveKeyFlag(value: string, flag: string): string {
  const key = value.trim();
  if (!Z85_KEY.test(key)) throw new CliError(`${flag} must be a CURVE public key of 40 Z85 characters, got "${value}"`, 2);
  return key;
}

/** The curve options of a dealer or client from its flags (unset flags leave the environment to decide). */
export function curveClientFlags(parsed: Record<string, unknown>): { curveServerKey?: string; curveSecretKey?: string } {
  const serverKey = parsed["curve-server-key"] as string | undefined;
  const secretFile = parsed["curve-secret-key-file"] as string | undefined;
  if (secretFile !== undefined && serverKey === undefined && !process.env.VOIDRAIL_CURVE_SERVER_KEY) {
    throw new CliError("--curve-secret-key-file needs --curve-server-key (the router's CURVE public key)", 2);
  }
  return {
    ...(serverKey !== undefined ? { curveServerKey: curveKeyFlag(serverKey, "--curve-server-key") } : {}),
    ...(secretFile !== undefined ? { curveSecretKey: readCurveSecretKeyFile(secretFile, "--curve-secret-key-file") } : {}),
  };
}

export const storeArg = {
  store: {
    type: "string",
    description: "Where background tasks are kept: a SQLite file, or memory (default ./voidrail-tasks.db, env VOIDRAIL_STORE)",
  },
} as const satisfies ArgsDef;

/** The task store a router command uses: --store, then VOIDRAIL_STORE, then ./voidrail-tasks.db. */
export function taskStorePath(store: string | undefined): string {
  const chosen = store ?? (env.VOIDRAIL_STORE || "./voidrail-tasks.db");
  if (chosen.trim() === "") throw new CliError("--store must be a file path or memory", 2);
  return chosen;
}

/** The exit code for a router whose task store cannot be used (as for a service that cannot start). */
export const EXIT_STORE_UNUSABLE = 78;

/** `--rate-limit Svc.method=100/s`, repeatable (or comma-separated): the router's per-method rate limits. */
export const rateLimitArg = {
  "rate-limit": {
    type: "string",
    description: 'Per-method rate limit, "Service.method=N/s" (or N/m, N/h); repeatable; wins over the dealers\' own',
  },
} as const satisfies ArgsDef;

/** The `--rate-limit` values as the router's `rateLimits` option; a bad one is a usage error naming it. */
export function parseRateLimits(values: string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const limits: Record<string, string> = {};
  for (const value of values) {
    const match = /^([^=\s]+)=(\S+)$/.exec(value);
    if (!match) throw new CliError(`--rate-limit takes Service.method=N/s (or N/m, N/h), got "${value}"`, 2);
    const [, method, rate] = match;
    if (!/^[1-9]\d{0,8}\/[smh]$/.test(rate)) {
      throw new CliError(`--rate-limit ${method}: "${rate}" is not a rate; write N/s, N/m or N/h, e.g. 100/s`, 2);
    }
    limits[method] = rate;
  }
  return limits;
}

export const httpArgs = {
  "http-port": {
    type: "string",
    description: "Serve the dashboard, /metrics and /api on this port (off by default, env VOIDRAIL_HTTP_PORT)",
  },
  "http-host": { type: "string", description: "Interface for the HTTP server (default 127.0.0.1; another needs --http-token)" },
  "http-token": { type: "string", description: "Token the HTTP server requires, except on /healthz (env VOIDRAIL_HTTP_TOKEN)" },
} as const satisfies ArgsDef;

/** The router's `http` option from --http-* flags; undefined leaves it to VOIDRAIL_HTTP_PORT. */
export function httpOptions(args: {
  "http-port"?: string;
  "http-host"?: string;
  "http-token"?: string;
}): { port?: number; host?: string; token?: string } | undefined {
  const portText = args["http-port"];
  const host = args["http-host"];
  const token = args["http-token"];
  if (portText === undefined && host === undefined && token === undefined) return undefined;
  if (portText === undefined && !env.VOIDRAIL_HTTP_PORT?.trim())
    throw new CliError("--http-host and --http-token need --http-port (or VOIDRAIL_HTTP_PORT)", 2);
  const options: { port?: number; host?: string; token?: string } = {};
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText.trim()) || Number(portText) > 65535)
      throw new CliError(`--http-port must be a port number, got "${portText}"`, 2);
    options.port = Number(portText);
  }
  if (host !== undefined) options.host = host;
  if (token !== undefined) options.token = token;
  return options;
}

export const logLevelArg = {
  "log-level": { type: "string", description: "silent, error, warn, info or debug (env VOIDRAIL_LOG_LEVEL)" },
} as const satisfies ArgsDef;

/**
 * The router endpoint. A flag beats an environment variable: --address, then --host/--port, then
 * VOIDRAIL_ROUTER_ADDRESS, then VOIDRAIL_HOST/VOIDRAIL_PORT, then tcp://127.0.0.1:5555.
 */
export function routerEndpoint(args: { host?: string; port?: string; address?: string }): string {
  const hostOrPortGiven = args.host !== undefined || args.port !== undefined;
  const address = args.address ?? (hostOrPortGiven ? undefined : env.VOIDRAIL_ROUTER_ADDRESS || undefined);
  if (address) {
    if (!/^(tcp|ipc):\/\/.+/.test(address))
      throw new CliError(`--address must look like tcp://host:port or ipc:///path, got "${address}"`, 2);
    return address;
  }
  const port = parsePositiveInteger(args.port ?? (env.VOIDRAIL_PORT || "5555"), "--port", 65535);
  const host = args.host ?? (env.VOIDRAIL_HOST || "127.0.0.1");
  if (!/^[A-Za-z0-9.:*_-]+$/.test(host)) throw new CliError(`--host "${host}" is not a host name or address`, 2);
  return `tcp://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export function parsePositiveInteger(text: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text.trim())) throw new CliError(`${flag} must be a whole number, got "${text}"`, 2);
  const value = Number(text);
  if (value < 1 || value > max) throw new CliError(`${flag} must be between 1 and ${max}, got ${value}`, 2);
  return value;
}

export function parseSeconds(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new CliError(`${flag} must be a number of seconds, got "${text}"`, 2);
  return value;
}

/** "a,b , c" → ["a", "b", "c"]. */
export function splitKeys(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split(",")
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
}

/** Sets the level every VoidRail logger is created with; call before creating routers or dealers. */
export function applyLogLevel(level: string | undefined, fallback: string): void {
  const chosen = level ?? env.VOIDRAIL_LOG_LEVEL ?? fallback;
  if (!["silent", "error", "warn", "info", "debug", "trace"].includes(chosen)) {
    throw new CliError(`--log-level must be silent, error, warn, info or debug, got "${chosen}"`, 2);
  }
  env.VOIDRAIL_LOG_LEVEL = chosen;
}

/**
 * citty accepts flags it does not know; a typo would then be ignored silently. Rejects them,
 * naming the flag, and returns every value of the repeatable flags (citty keeps only the last).
 */
export function checkFlags(rawArgs: string[], defined: ArgsDef, repeatable: string[] = []): Record<string, string[]> {
  const known = new Set(["help", "h"]);
  for (const [name, def] of Object.entries(defined)) {
    known.add(name);
    for (const alias of [(def as { alias?: string | string[] }).alias ?? []].flat()) known.add(alias);
  }
  const repeated: Record<string, string[]> = Object.fromEntries(repeatable.map((name) => [name, []]));
  for (let i = 0; i < rawArgs.length; i++) {
    const raw = rawArgs[i];
    if (raw === "--") break;
    if (!raw.startsWith("-") || raw === "-" || /^-\d/.test(raw)) continue;
    const body = raw.replace(/^--?/, "");
    const [name, inline] = body.split(/=(.*)/s, 2);
    const plain = name.startsWith("no-") && known.has(name.slice(3)) ? name.slice(3) : name;
    if (!known.has(plain)) throw new CliError(`unknown option ${raw.split("=")[0]} (see --help)`, 2);
    if (repeatable.includes(plain)) {
      const value = inline ?? rawArgs[++i];
      if (value === undefined) throw new CliError(`${raw} needs a value`, 2);
      repeated[plain].push(
        ...value
          .split(",")
          .map((v) => v.trim())
          .filter(Boolean),
      );
    } else if (defined[plain]?.type === "string" && inline === undefined) {
      i++;
    }
  }
  return repeated;
}

/**
 * Calls `drain` on the first of `signals` (default SIGINT and SIGTERM) and `force` on the second,
 * so a stuck drain can always be interrupted. The returned function starts the drain as a signal
 * would (a supervised child uses it when its supervisor disappears).
 */
export function onShutdown(
  drain: (signal: string) => Promise<void>,
  force: () => void,
  signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"],
): (reason: string) => void {
  let draining = false;
  const handler = (signal: string) => {
    if (draining) {
      force();
      return;
    }
    draining = true;
    void drain(signal);
  };
  for (const signal of signals) process.on(signal, handler);
  return handler;
}
