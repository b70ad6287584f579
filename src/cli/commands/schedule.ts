/** `voidrail schedule ...`: periodic tasks kept by the router; one file per subcommand in schedule/, loaded when it runs. */
import { defineCommand } from "citty";

export default defineCommand({
  meta: { name: "schedule", description: "Periodic tasks (cron or every N seconds): add, list, remove, pause, resume" },
  subCommands: {
    add: () => import("./schedule/add.ts").then((m) => m.default),
    list: () => import("./schedule/list.ts").then((m) => m.default),
    remove: () => import("./schedule/remove.ts").then((m) => m.default),
    pause: () => import("./schedule/pause.ts").then((m) => m.default),
    resume: () => import("./schedule/resume.ts").then((m) => m.default),
  },
});
