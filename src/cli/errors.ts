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
    const code = (error as { code?: unknown }).code;
    if (error instanceof CliError) {
      console.error(`voidrail: ${error.message}`);
      process.exit(error.exitCode);
    }
    if (typeof code === "string" && /^[A-Z][A-Z0-9_]*$/.test(code) && error instanceof Error) {
      console.error(`voidrail: ${code}: ${error.message}`);
      process.exit(1);
    }
    console.error(error);
    process.exit(1);
  }
}

/**
 * The one line for a service that could not start, with a hint when the router refused its key.
 */
export function startupFailure(className: string, error: unknown): CliError {
  const message = (error as Error)?.message ?? String(error);
  const hint = isAuthFailure(error) ? " (the router requires a dealer key: --api-key or VOIDRAIL_API_KEY)" : "";
  return new CliError(`${className} could not start: ${message}${hint}`, EXIT_STARTUP_FAILURE);
}

/** True for the error a router's refused API key becomes. */
export function isAuthFailure(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "AUTH_FAILED";
}
