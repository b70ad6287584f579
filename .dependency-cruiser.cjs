/**
 * The direction of imports in src/ (shared/STYLE.md): cli → http, observability → tasks → router →
 * protocol → zmtp → util. `store` is used by `tasks` alone; the router never imports tasks, store or
 * observability (they listen to its events); outside zmtp/, only zmtp/index.ts is imported.
 * dealer/ and client/ sit beside router/ (they speak the protocol over zmtp); index.ts and cli/
 * may import anything below them. Run by `npm run check` (and so by `npm test`).
 */
const layer = (name) => `^src/${name}/`;

/** Folders a folder must not import, lowest layers first. */
const below = {
  util: ["zmtp", "protocol", "router", "dealer", "client", "tasks", "store", "observability", "http", "cli"],
  zmtp: ["protocol", "router", "dealer", "client", "tasks", "store", "observability", "http", "cli"],
  protocol: ["router", "dealer", "client", "tasks", "store", "observability", "http", "cli"],
  router: ["dealer", "client", "tasks", "store", "observability", "http", "cli"],
  dealer: ["router", "client", "tasks", "store", "observability", "http", "cli"],
  client: ["router", "dealer", "tasks", "store", "observability", "http", "cli"],
  tasks: ["observability", "http", "cli"],
  observability: ["http", "cli"],
  http: ["cli"],
};

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A cycle means two rooms are one: cut the shared part out, or pass an interface.",
      from: { path: "^src/" },
      to: { circular: true },
    },
    ...Object.entries(below).map(([from, targets]) => ({
      name: `${from}-imports-downwards`,
      severity: "error",
      comment: `src/${from} must not import ${targets.join(", ")} (imports point one way: see shared/STYLE.md).`,
      from: { path: layer(from) },
      to: { path: `^src/(${targets.join("|")})/` },
    })),
    {
      name: "options-below-router",
      severity: "error",
      comment: "src/options.ts (shared option checks) sits on protocol: it imports protocol and util only.",
      from: { path: "^src/options\\.ts$" },
      to: { path: "^src/(zmtp|router|dealer|client|tasks|store|observability|http|cli)/" },
    },
    {
      name: "store-only-from-tasks",
      severity: "error",
      comment: "The store is the task layer's: nothing else reads or writes it.",
      from: { path: "^src/", pathNot: ["^src/store/", "^src/tasks/", "^src/index\\.ts$", "^src/cli/"] },
      to: { path: "^src/store/" },
    },
    {
      name: "zmtp-through-its-index",
      severity: "error",
      comment: "Outside src/zmtp, import src/zmtp/index.ts only (its internals may change).",
      from: { path: "^src/", pathNot: "^src/zmtp/" },
      to: { path: "^src/zmtp/", pathNot: "^src/zmtp/index\\.ts$" },
    },
    {
      name: "no-orphans",
      severity: "error",
      comment: "A module nothing imports is dead code (entry points excepted).",
      from: {
        orphan: true,
        pathNot: ["^src/index\\.ts$", "^src/cli/main\\.ts$", "^src/dealer/heartbeat-worker\\.ts$", "\\.d\\.ts$"],
      },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    includeOnly: "^src/",
    // dependency-cruiser cannot drive TypeScript 7 (no JS API yet); swc parses the .ts sources and
    // still reports type-only imports, so a type import the wrong way fails too. With
    // tsPreCompilationDeps on, it would ask for tsc and warn.
    parser: "swc",
    tsPreCompilationDeps: false,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
