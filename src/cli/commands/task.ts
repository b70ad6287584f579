/** `voidrail task ...`: background tasks; one file per subcommand in task/, loaded when it runs. */
import { defineCommand } from "citty";

export default defineCommand({
  meta: { name: "task", description: "Background tasks: submit, status, wait, watch, revoke, retry, list" },
  subCommands: {
    submit: () => import("./task/submit.ts").then((m) => m.default),
    status: () => import("./task/status.ts").then((m) => m.default),
    wait: () => import("./task/wait.ts").then((m) => m.default),
    watch: () => import("./task/watch.ts").then((m) => m.default),
    revoke: () => import("./task/revoke.ts").then((m) => m.default),
    retry: () => import("./task/retry.ts").then((m) => m.default),
    list: () => import("./task/list.ts").then((m) => m.default),
  },
});
