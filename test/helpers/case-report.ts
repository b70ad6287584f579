/**
 * The runner side of a suite run under Node (node-suite.ts): runs cases one by one and reports
 * each as a JSON line. No bun:test import here: this is bundled for Node.
 */
/** What a runner prints per case. */
export interface CaseResult {
  name: string;
  ok: boolean;
  error: string | null;
  ms: number;
}

interface RunnableCase {
  name: string;
}

/** Runs cases one by one and prints a CaseResult line each on stdout; progress goes to stderr. */
export async function runCasesAndReport<C extends RunnableCase>(
  tag: string,
  cases: readonly C[],
  runner: { run(c: C): Promise<void>; dispose?(): Promise<void> | void },
): Promise<never> {
  const filters = process.argv.slice(2);
  const selected = filters.length === 0 ? cases : cases.filter((c) => filters.some((f) => c.name.includes(f)));
  process.on("unhandledRejection", (err) => {
    process.stderr.write(`[${tag}] unhandled rejection: ${(err as Error)?.stack ?? err}\n`);
  });
  const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : `node ${process.version}`;
  process.stderr.write(`[${tag}] ${selected.length} cases on ${runtime}\n`);
  let failed = 0;
  for (const c of selected) {
    const started = Date.now();
    let error: string | null = null;
    try {
      await runner.run(c);
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      failed++;
    }
    const ms = Date.now() - started;
    const result: CaseResult = { name: c.name, ok: error === null, error, ms };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.stderr.write(`[${tag}] ${error === null ? "pass" : "FAIL"} ${c.name} (${ms} ms)\n`);
  }
  await runner.dispose?.();
  process.stderr.write(`[${tag}] done: ${selected.length - failed} passed, ${failed} failed\n`);
  // Exit explicitly: a socket under test that fails to release its handles must not hang the run.
  process.exit(0);
}
