/**
 * Builds dist/voidrail: one executable with the Bun runtime, the CLI and the dealer's network
 * worker (a second entrypoint: workers are not found by the bundler on their own).
 *   bun scripts/build.ts [--outfile dist/voidrail] [--no-bytecode]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    outfile: { type: "string", default: "dist/voidrail" },
    // For comparison only (bench/startup.ts): the same binary without precompiled bytecode.
    "no-bytecode": { type: "boolean", default: false },
  },
});
const bytecode = !values["no-bytecode"];
const result = await Bun.build({
  entrypoints: ["src/cli/main.ts", "src/dealer/heartbeat-worker.ts"],
  compile: { outfile: values.outfile, autoloadPackageJson: true },
  // An optional peer: found in the application's node_modules at run time, or not at all.
  external: ["@opentelemetry/api"],
  minify: true,
  // Precompiled bytecode spares parsing the whole bundle at every start (`voidrail --version`:
  // ~16 ms instead of ~37 ms here; bench/startup.ts). Bytecode needs an explicit module format.
  ...(bytecode ? { bytecode: true, format: "esm" as const } : {}),
});
if (!result.success) {
  for (const message of result.logs) console.error(message);
  process.exit(1);
}
console.log(`built ${values.outfile}`);
