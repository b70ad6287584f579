/**
 * Owns the router's configuration: the `ServiceRouterOptions` a caller passes, their valibot
 * check, the VOIDRAIL_* environment variables that fill what is left out, and the defaults.
 * Everything downstream reads the resolved `RouterConfig`, never the raw options.
 */
import * as v from "valibot";
import {
  ApiKeyOption,
  booleanFromEnv,
  CurveKeyOption,
  checkOptions,
  EndpointOption,
  listFromEnv,
  SecondsOption,
  secondsFromEnv,
} from "../options.ts";
import { RateSchema, RouterMode, ValidationError } from "../protocol/index.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { parseCurveKey, z85Encode } from "../zmtp/index.ts";
import type { CurveRoleKeys } from "./auth.ts";
import { connectionTimings } from "./connection-timings.ts";

/** The default `maxMessageSize`: room for a 256 MiB binary and the frames around it. */
export const DEFAULT_MAX_MESSAGE_SIZE = 257 * 1024 * 1024;

/** Options of a ServiceRouter. Times are in seconds, as in the Python seed. */
export interface ServiceRouterOptions {
  /** Endpoint to bind, e.g. "tcp://127.0.0.1:5555", "tcp://0.0.0.0:5555", "ipc:///tmp/vr.sock". Default "tcp://127.0.0.1:5555". */
  address?: string;
  /** "fifo" (default: one request per dealer at a time, strictly in arrival order) or "load_balance". */
  routerMode?: RouterMode;
  /** A peer silent this long is gone; its work is re-dispatched. Default 30 s (env VOIDRAIL_HEARTBEAT_TIMEOUT). */
  heartbeatTimeout?: number;
  /** Require API keys. Default: true when any key list is non-empty (env VOIDRAIL_REQUIRE_AUTH). */
  requireAuth?: boolean;
  /** Keys dealers must present (env VOIDRAIL_DEALER_API_KEYS, comma-separated). */
  dealerApiKeys?: string[];
  /** Keys clients must present (env VOIDRAIL_CLIENT_API_KEYS, comma-separated). */
  clientApiKeys?: string[];
  /** Most requests waiting per method before QueueFullError. Default 10000. */
  maxQueueLength?: number;
  /** Per-method overrides of maxQueueLength, keyed "Service.method". */
  queueLimits?: Record<string, number>;
  /**
   * Per-method rate limits, keyed "Service.method": `{ "Mail.send": "100/s" }` ("N/s", "N/m",
   * "N/h"). One token bucket per method for all its dealers, plain calls and task attempts
   * together; over the rate they wait in the queue, in order. Wins over a dealer's
   * `@serviceMethod({ task: { rateLimit } })`. Default: none.
   */
  rateLimits?: Record<string, string>;
  /** How many times a request whose dealer was lost (before any reply) is dispatched again. Default 1. */
  maxRedispatch?: number;
  /** Default call timeout applied when a request carries none, in seconds; 0 = none. Default 0. */
  defaultTimeout?: number;
  /** Seconds a stopping router lets running requests finish. Default 5. */
  shutdownGrace?: number;
  /**
   * Largest message accepted from any peer, in bytes (all its frames: JSON and binary). A bigger
   * one is skipped as it arrives, never held, and fails that call alone with VALIDATION_ERROR
   * (`data: {path, size, limit}`); clients and dealers, told the bound in WELCOME, refuse such a
   * call before sending it. Default 257 MiB: a 256 MiB binary with its JSON and headers.
   */
  maxMessageSize?: number;
  /**
   * The router's long-term CURVE secret key (40 Z85 characters): every connection is then
   * encrypted (CurveZMQ) and NULL peers are refused. Env VOIDRAIL_CURVE_SECRET_KEY.
   */
  curveSecretKey?: string;
  /**
   * CURVE public keys allowed to act as dealers and as clients (instead of API keys, or on top
   * of them when both are set). An omitted list leaves that role to any key (and to API keys);
   * with both lists, other keys are refused during the CURVE handshake. Env
   * VOIDRAIL_CURVE_ALLOW_DEALERS, VOIDRAIL_CURVE_ALLOW_CLIENTS (comma-separated).
   */
  curveAllow?: { dealers?: string[]; clients?: string[] };
  /** Logger (consola-compatible). Default: consola tagged "router". */
  logger?: Logger;
}

const OptionsSchema = v.object({
  address: v.optional(EndpointOption),
  routerMode: v.optional(v.picklist(["fifo", "load_balance"])),
  heartbeatTimeout: v.optional(v.pipe(v.number(), v.minValue(0.05), v.maxValue(2_000_000))),
  requireAuth: v.optional(v.boolean()),
  dealerApiKeys: v.optional(v.array(ApiKeyOption)),
  clientApiKeys: v.optional(v.array(ApiKeyOption)),
  maxQueueLength: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  queueLimits: v.optional(v.record(v.string(), v.pipe(v.number(), v.integer(), v.minValue(0)))),
  rateLimits: v.optional(v.record(v.string(), RateSchema)),
  maxRedispatch: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100))),
  defaultTimeout: v.optional(SecondsOption),
  shutdownGrace: v.optional(SecondsOption),
  maxMessageSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1024))),
  curveSecretKey: v.optional(CurveKeyOption),
  curveAllow: v.optional(v.object({ dealers: v.optional(v.array(CurveKeyOption)), clients: v.optional(v.array(CurveKeyOption)) })),
  logger: v.optional(v.any()),
});

/** The options after checks, environment and defaults: what the router's parts are built from. */
export interface RouterConfig {
  readonly address: string;
  readonly mode: RouterMode;
  /** From `heartbeatTimeout` (see connection-timings.ts). */
  readonly heartbeatTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly handshakeIntervalMs: number;
  /** When client keys are required: time from the ZMTP handshake to a welcomed HELLO (or a valid BEAT). */
  readonly helloTimeoutMs: number;
  readonly dealerApiKeys: readonly string[];
  readonly clientApiKeys: readonly string[];
  readonly requireDealerAuth: boolean;
  readonly requireClientAuth: boolean;
  readonly maxQueueLength: number;
  readonly queueLimits: Readonly<Record<string, number>>;
  readonly rateLimits: Readonly<Record<string, string>>;
  readonly maxRedispatch: number;
  /** Applied to requests that carry no timeout; undefined = none. */
  readonly defaultTimeoutMs: number | undefined;
  /** Seconds a stopping router lets running requests finish. */
  readonly shutdownGrace: number;
  readonly maxMessageSize: number;
  /** Set: the socket is a CURVE server with this secret key (Z85). */
  readonly curveSecretKey: string | undefined;
  /** Keys (Z85) per role; a role without a list is open to any admitted key. */
  readonly curveRoles: CurveRoleKeys;
  readonly logger: Logger;
}

/**
 * Checks `options` (a ValidationError names each bad field), fills the rest from `env` and the
 * defaults.
 *
 * @example
 * const config = resolveRouterConfig({ routerMode: "load_balance" }, process.env);
 */
export function resolveRouterConfig(options: ServiceRouterOptions, env: Record<string, string | undefined>): RouterConfig {
  checkOptions(OptionsSchema, options, "ServiceRouter");
  const dealerApiKeys = options.dealerApiKeys ?? listFromEnv(env.VOIDRAIL_DEALER_API_KEYS);
  const clientApiKeys = options.clientApiKeys ?? listFromEnv(env.VOIDRAIL_CLIENT_API_KEYS);
  const requireAuth = options.requireAuth ?? booleanFromEnv(env.VOIDRAIL_REQUIRE_AUTH) ?? dealerApiKeys.length + clientApiKeys.length > 0;
  if (requireAuth && dealerApiKeys.length + clientApiKeys.length === 0) {
    throw new ValidationError("requireAuth is on but no dealer or client API keys are configured");
  }
  const heartbeatTimeout = options.heartbeatTimeout ?? secondsFromEnv(env.VOIDRAIL_HEARTBEAT_TIMEOUT) ?? 30;
  const timings = connectionTimings(heartbeatTimeout);
  const defaultTimeout = options.defaultTimeout ?? 0;
  const curveSecretKey = options.curveSecretKey ?? (env.VOIDRAIL_CURVE_SECRET_KEY?.trim() || undefined);
  const curveRoles = curveRolesFrom(options.curveAllow, env);
  if (curveSecretKey === undefined && (curveRoles.dealers !== undefined || curveRoles.clients !== undefined)) {
    throw new ValidationError("curveAllow needs curveSecretKey: key lists only mean something on a CURVE router", {
      data: { path: "curveAllow" },
    });
  }
  return {
    address: options.address ?? "tcp://127.0.0.1:5555",
    mode: options.routerMode ?? RouterMode.FIFO,
    heartbeatTimeoutMs: timings.heartbeatTimeoutMs,
    heartbeatIntervalMs: timings.heartbeatIntervalMs,
    handshakeIntervalMs: timings.handshakeIntervalMs,
    helloTimeoutMs: timings.helloTimeoutMs,
    dealerApiKeys,
    clientApiKeys,
    requireDealerAuth: requireAuth && dealerApiKeys.length > 0,
    requireClientAuth: requireAuth && clientApiKeys.length > 0,
    maxQueueLength: options.maxQueueLength ?? 10_000,
    queueLimits: options.queueLimits ?? {},
    rateLimits: options.rateLimits ?? {},
    maxRedispatch: options.maxRedispatch ?? 1,
    defaultTimeoutMs: defaultTimeout > 0 ? defaultTimeout * 1000 : undefined,
    shutdownGrace: options.shutdownGrace ?? 5,
    maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    curveSecretKey: curveSecretKey === undefined ? undefined : z85(curveSecretKey, "curveSecretKey"),
    curveRoles,
    logger: options.logger ?? createLogger("router"),
  };
}

/** A key in Z85, however it was given; a ValidationError naming `path` when it is not a key. */
function z85(key: string, path: string): string {
  try {
    return z85Encode(parseCurveKey(key, path));
  } catch (error) {
    throw new ValidationError(`invalid ServiceRouter options: ${(error as Error).message}`, { data: { path } });
  }
}

function curveRolesFrom(allow: ServiceRouterOptions["curveAllow"], env: Record<string, string | undefined>): CurveRoleKeys {
  const dealers = allow?.dealers ?? (env.VOIDRAIL_CURVE_ALLOW_DEALERS ? listFromEnv(env.VOIDRAIL_CURVE_ALLOW_DEALERS) : undefined);
  const clients = allow?.clients ?? (env.VOIDRAIL_CURVE_ALLOW_CLIENTS ? listFromEnv(env.VOIDRAIL_CURVE_ALLOW_CLIENTS) : undefined);
  return {
    ...(dealers !== undefined ? { dealers: dealers.map((key, i) => z85(key, `curveAllow.dealers.${i}`)) } : {}),
    ...(clients !== undefined ? { clients: clients.map((key, i) => z85(key, `curveAllow.clients.${i}`)) } : {}),
  };
}
