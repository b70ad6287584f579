/**
 * Start-up time of the compiled binary: `dist/voidrail --version` and `--help`, each a fresh
 * process, next to a compiled hello world built in the same run (the Bun runtime's own floor)
 * and to the same binary built without bytecode.
 *
 *   ./node_modules/.bin/bun bench/startup.ts              # writes its section of docs/benchmarks.md
 *   ./node_modules/.bin/bun bench/startup.ts --runs 50 --no-write
 *
 * Each figure is the wall time from spawn to exit as this process sees it, stdout read in full.
 * The commands take turns run by run, so a slow moment of the machine hits them alike.
 */
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { machineLine, writeSection } from "./doc.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "30" },
    warmup: { type: "string", default: "3" },
    "no-write": { type: "boolean", default: false },
  },
});
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);
if (!Number.isInteger(RUNS) || RUNS < 20) throw new Error(`--runs must be a whole number ≥ 20, got ${values.runs}`);
const TARGET_MS = 60;
const BINARY = "dist/voidrail";
const HELLO = ".tmp/bench-startup/hello";
const NO_BYTECODE = ".tmp/bench-startup/voidrail-no-bytecode";

/** Builds with the project's build script, as `npm run build` does. */
function buildVoidrail(outfile: string, ...flags: string[]): void {
  const started = performance.now();
  const build = Bun.spawnSync([process.execPath, "scripts/build.ts", "--outfile", outfile, ...flags], { stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`scripts/build.ts failed (exit ${build.exitCode})\n${build.stdout}\n${build.stderr}`);
  console.error(`built ${outfile} in ${Math.round(performance.now() - started)} ms`);
}

/** A compiled hello world with the same build options: what any Bun binary costs to start. */
async function buildHello(): Promise<void> {
  writeFileSync(".tmp/bench-startup/hello.ts", 'console.log("hello");\n');
  const result = await Bun.build({
    entrypoints: [".tmp/bench-startup/hello.ts"],
    compile: { outfile: HELLO },
    minify: true,
    bytecode: true,
    format: "esm",
  });
  if (!result.success) throw new Error(`hello world did not build:\n${result.logs.join("\n")}`);
}

interface Subject {
  label: string;
  argv: string[];
  /** What stdout must contain, so a broken binary is not timed as a fast one. */
  expect: string;
  samplesMs: number[];
}

function timeOnce(subject: Subject): number {
  const started = performance.now();
  const child = Bun.spawnSync(subject.argv, { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const elapsedMs = performance.now() - started;
  if (child.exitCode !== 0 || !child.stdout.toString().includes(subject.expect)) {
    throw new Error(`${subject.argv.join(" ")} exited ${child.exitCode}:\n${child.stdout}\n${child.stderr}`);
  }
  return elapsedMs;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)];
}

function summary(samplesMs: number[]) {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { median: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), min: sorted[0], max: sorted[sorted.length - 1] };
}

const ms = (value: number) => value.toFixed(1);

mkdirSync(".tmp/bench-startup", { recursive: true });
buildVoidrail(BINARY);
buildVoidrail(NO_BYTECODE, "--no-bytecode");
await buildHello();
const version = (await Bun.file("package.json").json()).version as string;
const subjects: Subject[] = [
  { label: "compiled hello world (baseline)", argv: [HELLO], expect: "hello", samplesMs: [] },
  { label: "`voidrail --version`", argv: [BINARY, "--version"], expect: version, samplesMs: [] },
  { label: "`voidrail --help`", argv: [BINARY, "--help"], expect: "USAGE voidrail", samplesMs: [] },
  { label: "`voidrail --version`, built with `--no-bytecode`", argv: [NO_BYTECODE, "--version"], expect: version, samplesMs: [] },
];

for (let run = 0; run < WARMUP; run++) for (const subject of subjects) timeOnce(subject);
for (let run = 0; run < RUNS; run++) for (const subject of subjects) subject.samplesMs.push(timeOnce(subject));

const rows = subjects.map((subject) => ({ subject, ...summary(subject.samplesMs) }));
const baseline = rows[0];
const versionRow = rows[1];
for (const row of rows)
  console.log(
    `${row.subject.label.padEnd(50)} median ${ms(row.median).padStart(6)} ms  p90 ${ms(row.p90).padStart(6)} ms  (min ${ms(row.min)}, max ${ms(row.max)})`,
  );

const sizeMiB = (path: string) => (statSync(path).size / 2 ** 20).toFixed(1);
const met = versionRow.median <= TARGET_MS;
const section = [
  "## Start-up of the binary (bench/startup.ts)",
  "",
  machineLine(),
  "",
  `Wall time from spawn to exit of one process, as the parent sees it, over ${RUNS} runs of each command after ${WARMUP} warm-up runs; the commands take turns run by run. ` +
    `\`dist/voidrail\` (${sizeMiB(BINARY)} MiB) is built by \`scripts/build.ts\` at the start of the run; the baseline is \`console.log("hello")\` compiled with the same options (\`bun build --compile --minify --bytecode --format=esm\`, ${sizeMiB(HELLO)} MiB): what any Bun binary costs to start.`,
  "",
  "| command | median ms | p90 ms | min – max ms | over the baseline (median) |",
  "|---|---:|---:|---|---:|",
  ...rows.map(
    (row) =>
      `| ${row.subject.label} | ${ms(row.median)} | ${ms(row.p90)} | ${ms(row.min)} – ${ms(row.max)} | ${row === baseline ? "–" : `+${ms(row.median - baseline.median)}`} |`,
  ),
  "",
  `Target: \`voidrail --version\` starts in at most ${TARGET_MS} ms — measured ${ms(versionRow.median)} ms median, ${ms(versionRow.p90)} ms p90 (${met ? "met" : "missed"}).`,
  "",
  "`--version` and `--help` run only citty and the command table: each subcommand's code (router, dealer, client, and consola with them) is imported when that subcommand runs. `scripts/build.ts` compiles the bundle to bytecode; the last row is the same binary without it (`scripts/build.ts --no-bytecode`), which parses the whole bundle at every start.",
  "",
  "Reproduce: `./node_modules/.bin/bun bench/startup.ts` (options: `--runs 30 --warmup 3 --no-write`). Without `--no-write` it replaces this section of docs/benchmarks.md and leaves the others alone.",
  "",
].join("\n");
if (!values["no-write"]) writeSection("docs/benchmarks.md", section);
console.log(`\nvoidrail --version: ${ms(versionRow.median)} ms median (target ≤ ${TARGET_MS} ms: ${met ? "met" : "missed"})`);
