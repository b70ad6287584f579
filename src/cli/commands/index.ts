/** The subcommands, each loaded only when it runs, so `voidrail --version` imports almost nothing. */
import type { CommandDef } from "citty";

// biome-ignore lint/suspicious/noExplicitAny: each subcommand has its own argument shape.
type AnyCommand = CommandDef<any>;
type Lazy = () => Promise<AnyCommand>;
const load =
  (loader: () => Promise<{ default: AnyCommand }>): Lazy =>
  () =>
    loader().then((module) => module.default);

/** One file per subcommand, loaded only when it runs. */
export const subCommands: Record<string, Lazy> = {
  router: load(() => import("./router.ts")),
  dealer: load(() => import("./dealer.ts")),
  client: load(() => import("./client.ts")),
  serve: load(() => import("./serve.ts")),
  task: load(() => import("./task.ts")),
  schedule: load(() => import("./schedule.ts")),
  // Hidden: what `dealer --instances N` starts N times.
  "dealer-child": load(() => import("./dealer-child.ts")),
};
