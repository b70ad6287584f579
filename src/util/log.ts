/**
 * Logging for the router, dealers and clients: consola, tagged per component. Level from
 * VOIDRAIL_LOG_LEVEL (silent, error, warn, info, debug; default info).
 */
import { consola } from "consola";

/** What VoidRail logs through; a consola instance fits, and so does a small custom object. */
export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug?(message: string): void;
}

const LEVELS: Record<string, number> = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

export function createLogger(tag: string): Logger {
  const level = LEVELS[(process.env.VOIDRAIL_LOG_LEVEL ?? "").toLowerCase()] ?? 3;
  return consola.create({ level }).withTag(tag);
}

/** A logger that drops everything (tests, quiet clients). */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
