/**
 * Builds dist/voidrail: one executable with the Bun runtime, the CLI and the dealer's network
 * worker (a second entrypoint: workers are not found by the bundler on their own).
 *   bun scripts/build.ts [--outfile dist/voidrail]
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { outfile: { type: "string", default: "dist/voidrail" } } });
const result = await Bun.build({
  entrypoints: ["src/cli/main.ts", "src/dealer/network-worker.ts"],
  compile: { outfile: values.outfile, autoloadPackageJson: true },
  minify: true,
});
if (!result.success) {
  for (const message of result.logs) console.error(message);
  process.exit(1);
}
console.log(`built ${values.outfile}`);
