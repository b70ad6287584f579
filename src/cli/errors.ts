/** A failure to report as one line and an exit code, without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** Exit code a dealer child uses for "could not start" (bad module, router unreachable): not restarted. */
export const EXIT_STARTUP_FAILURE = 78;

/**
 * Runs a command body: a CliError or a VoidRail error becomes `voidrail: <message>` on stderr
 * and a non-zero exit; anything else is a bug and keeps its stack.
 */
export async function runCli(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof CliError) {
      console.error(`voidrail: ${error.message}`);
      process.exit(error.exitCode);
    }
    const line = describeCodedError(error);
    if (line !== undefined) {
      console.error(`voidrail: ${line}`);
      process.exit(1);
    }
    console.error(error);
    process.exit(1);
  }
}

/**
 * `CODE: message` for an error that carries a VoidRail-style code, else undefined. A service's
 * own exception (REMOTE_ERROR) also names its class, `REMOTE_ERROR (RangeError): ...`: the
 * message alone often does not say what kind of failure it was.
 */
export function describeCodedError(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (!(error instanceof Error) || typeof code !== "string" || !/^[A-Z][A-Z0-9_]*$/.test(code)) return undefined;
  const remoteName = code === "REMOTE_ERROR" ? (error as { data?: { name?: unknown } }).data?.name : undefined;
  const label = typeof remoteName === "string" && /^[\x21-\x7e]{1,128}$/.test(remoteName) ? `${code} (${remoteName})` : code;
  return `${label}: ${error.message}`;
}

/**
 * The one line for a service that could not start, with a hint on what to change when the router
 * refused its key: a missing key and a wrong one need different fixes.
 */
export function startupFailure(className: string, error: unknown): CliError {
  const message = (error as Error)?.message ?? String(error);
  return new CliError(`${className} could not start: ${message}${refusedKeyHint(error, "dealer")}`, EXIT_STARTUP_FAILURE);
}

/** True for the error a router's refused API key becomes. */
export function isAuthFailure(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "AUTH_FAILED";
}

/**
 * What to do about a refused key, as " (...)" to append, or "" for any other error. `keyGiven`
 * is what the library added to the error's data (explainRefusedKey).
 */
export function refusedKeyHint(error: unknown, role: "client" | "dealer"): string {
  if (!isAuthFailure(error)) return "";
  const keyGiven = ((error as { data?: unknown }).data as { keyGiven?: unknown } | undefined)?.keyGiven;
  if (keyGiven === true) return ` (check --api-key or VOIDRAIL_API_KEY: it must be one of the router's --${role}-keys)`;
  if (keyGiven === false) return " (pass --api-key or set VOIDRAIL_API_KEY)";
  return "";
}
