/**
 * Owns what the router, dealer and client options have in common: valibot fragments for their
 * boundary checks and the parsing of VOIDRAIL_* environment variables.
 */
import * as v from "valibot";
import { API_KEY_PATTERN, ValidationError } from "./protocol/index.ts";

export const EndpointOption = v.pipe(v.string(), v.regex(/^(tcp|ipc):\/\/.+/, "must be tcp://host:port or ipc://path"));
export const ApiKeyOption = v.pipe(v.string(), v.regex(API_KEY_PATTERN, "must be 1-512 printable ASCII characters without spaces"));
export const SecondsOption = v.pipe(v.number(), v.minValue(0));

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
