/**
 * Owns what the router, dealer and client options have in common: valibot fragments for their
 * boundary checks and the parsing of VOIDRAIL_* environment variables.
 */
import * as v from "valibot";
import { API_KEY_PATTERN, ValidationError } from "./protocol/index.ts";

export const EndpointOption = v.pipe(v.string(), v.regex(/^(tcp|ipc):\/\/.+/, "must be tcp://host:port or ipc://path"));
export const ApiKeyOption = v.pipe(v.string(), v.regex(API_KEY_PATTERN, "must be 1-512 printable ASCII characters without spaces"));
export const SecondsOption = v.pipe(v.number(), v.minValue(0));
/** A CURVE key: 40 Z85 characters (libzmq's and zeromq.js's form) or 64 hex digits. */
export const CurveKeyOption = v.pipe(
  v.string(),
  v.regex(/^(?:[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}|[0-9a-fA-F]{64})$/, "must be a CURVE key: 40 Z85 characters or 64 hex digits"),
);

/**
 * Longest wait between two attempts of a dealer or client to reach a router that is away (the
 * delay doubles from 100 ms up to this). It bounds how long after a router's return its peers
 * are back: one attempt a second costs nothing, and a router restart is over in about a second.
 */
export const RECONNECT_MAX_INTERVAL_MS = 1000;

/** Checks options against `schema`; a failure is a ValidationError naming each bad field. */
export function checkOptions(schema: v.GenericSchema, options: unknown, what: string): void {
  const result = v.safeParse(schema, options);
  if (!result.success) {
    const fields = result.issues.map((issue) => `${v.getDotPath(issue) ?? "options"} ${issue.message}`);
    throw new ValidationError(`invalid ${what} options: ${fields.join("; ")}`, { data: { path: v.getDotPath(result.issues[0]) ?? "" } });
  }
}

/** The CURVE keys a dealer or client connects with, after options and environment. */
export interface ClientCurveKeys {
  /** The router's public key. */
  serverKey: string;
  /** Ours; undefined: a fresh key pair per process (encrypted, but no identity the router can list). */
  secretKey: string | undefined;
}

/**
 * A dealer's or client's CURVE keys: `curveServerKey`/`curveSecretKey` options, then
 * VOIDRAIL_CURVE_SERVER_KEY / VOIDRAIL_CURVE_SECRET_KEY. Undefined without a server key (NULL).
 * A secret key from the environment alone is ignored: in `voidrail serve` it is the router's.
 */
export function clientCurveKeys(
  options: { curveServerKey?: string; curveSecretKey?: string },
  env: Record<string, string | undefined>,
  what: string,
): ClientCurveKeys | undefined {
  const serverKey = options.curveServerKey ?? (env.VOIDRAIL_CURVE_SERVER_KEY?.trim() || undefined);
  if (serverKey === undefined) {
    if (options.curveSecretKey !== undefined) {
      throw new ValidationError(`invalid ${what} options: curveSecretKey needs curveServerKey (the router's CURVE public key)`, {
        data: { path: "curveServerKey" },
      });
    }
    return undefined;
  }
  if (!v.is(CurveKeyOption, serverKey)) {
    throw new ValidationError(
      `invalid ${what} options: VOIDRAIL_CURVE_SERVER_KEY must be a CURVE key: 40 Z85 characters or 64 hex digits`,
      {
        data: { path: "curveServerKey" },
      },
    );
  }
  const secretKey = options.curveSecretKey ?? (env.VOIDRAIL_CURVE_SECRET_KEY?.trim() || undefined);
  if (secretKey !== undefined && !v.is(CurveKeyOption, secretKey)) {
    throw new ValidationError(
      `invalid ${what} options: VOIDRAIL_CURVE_SECRET_KEY must be a CURVE key: 40 Z85 characters or 64 hex digits`,
      {
        data: { path: "curveSecretKey" },
      },
    );
  }
  return { serverKey, secretKey };
}

/** "a, b,c" → ["a", "b", "c"]; empty or unset → []. */
export function listFromEnv(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** 1/true/yes/on → true, anything else set → false, unset or empty → undefined. */
export function booleanFromEnv(value: string | undefined): boolean | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return /^(1|true|yes|on)$/i.test(value.trim());
}

/** A positive number, or undefined when unset or not one. */
export function secondsFromEnv(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? number : undefined;
}
