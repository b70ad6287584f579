/**
 * Builds lib/, what the npm package serves to Node: one .js per source file, with .d.ts types and
 * source maps that point into src/ (which ships too). Runs on `npm pack` (prepack).
 *   node scripts/build-lib.mjs
 * Plain JavaScript on purpose: a Node user packing from a git checkout needs no Bun for this.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const lib = join(root, "lib");

// A file removed from src/ must not live on in the package.
rmSync(lib, { recursive: true, force: true });

const localTsc = join(root, "node_modules", ".bin", "tsc");
const tsc = spawnSync(existsSync(localTsc) ? localTsc : "tsc", ["-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (tsc.error) fail(`cannot run tsc (npm install first): ${tsc.error.message}`);
if (tsc.status !== 0) fail(`tsc -p tsconfig.build.json failed (exit ${tsc.status ?? tsc.signal})`);

// The dashboard's own files, which assets.ts imports as text (tsc does not copy them). The HTTP
// server needs Bun, which reads src/; they are here so that every import in lib/ resolves.
for (const file of ["app.js", "style.css"]) cpSync(join(root, "src/http/dashboard", file), join(lib, "http/dashboard", file));

// The entry points of package.json's exports, and the worker that heartbeat-thread.js starts by path.
for (const file of ["index.js", "index.d.ts", "zmtp/index.js", "zmtp/index.d.ts", "dealer/heartbeat-worker.js"])
  if (!existsSync(join(lib, file))) fail(`lib/${file} was not built`);

// tsc keeps `./x.ts` in the declarations. TypeScript 7 resolves that, but older consumers may
// not: name the .js file, which every TypeScript since 4.7 maps to its .d.ts (same length, so
// the declaration maps stay right).
for (const file of walk(lib).filter((path) => path.endsWith(".d.ts"))) {
  const text = readFileSync(file, "utf8");
  const rewritten = text.replace(/(\b(?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']*)\.ts(["'])/g, "$1$2.js$3");
  if (rewritten !== text) writeFileSync(file, rewritten);
}

// rewriteRelativeImportExtensions rewrites `./x.ts` to `./x.js` in static specifiers; an import
// it could not rewrite (a computed one) would fail under Node.
for (const file of walk(lib).filter((path) => path.endsWith(".js"))) {
  const text = readFileSync(file, "utf8");
  const match = /\b(?:from|import)\s*\(?\s*["'`]\.{1,2}\/[^"'`]*\.ts["'`]/.exec(text);
  if (match) fail(`${relative(root, file)} still names a .ts file: ${match[0]}`);
}
console.log(`built ${relative(process.cwd(), lib) || "lib"}/ (${walk(lib).filter((path) => path.endsWith(".js")).length} modules)`);

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

function fail(message) {
  console.error(`build-lib: ${message}`);
  process.exit(1);
}
