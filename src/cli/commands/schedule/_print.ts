/** How `voidrail schedule` prints schedules: a table on a terminal, JSON when piped (or with --json). */
import type { ScheduleInfo } from "../../../index.ts";
import { printTable } from "../../table.ts";
import { asTable } from "../task/_client.ts";

/** When it fires, in words: the cron rule with its zone, or the interval. */
export function describeWhen(schedule: ScheduleInfo): string {
  if (schedule.every !== undefined) return `every ${schedule.every} s`;
  return `${schedule.cron} (${schedule.timezone ?? "UTC"})`;
}

export function printSchedules(parsed: { json?: boolean }, schedules: ScheduleInfo[], one = false): void {
  if (!asTable(parsed)) {
    console.log(JSON.stringify(one ? schedules[0] : schedules, null, 2));
    return;
  }
  printTable(
    ["name", "when", "method", "state", "catch-up", "next due", "last due"],
    schedules.map((s) => [
      s.name,
      describeWhen(s),
      s.method,
      s.paused ? "paused" : "active",
      s.catchUp,
      s.nextDueAt ?? "-",
      s.lastDueAt ?? "-",
    ]),
  );
}
