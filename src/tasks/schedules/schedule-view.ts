/** A schedule as clients see it (docs/PROTOCOL.md §17): the stored record, times as ISO strings. */
import type { ScheduleInfo } from "../../protocol/index.ts";
import type { ScheduleRecord } from "../../store/task-store.ts";

const iso = (ms: number) => new Date(ms).toISOString();

export function scheduleInfo(record: ScheduleRecord, nextDueAt: number | undefined): ScheduleInfo {
  const info: ScheduleInfo = {
    name: record.name,
    method: record.method,
    args: JSON.parse(new TextDecoder().decode(record.args)) as unknown[],
    options: record.options,
    catchUp: record.catchUp,
    paused: record.paused,
    createdAt: iso(record.createdAt),
  };
  if (record.cron !== undefined) info.cron = record.cron;
  if (record.timezone !== undefined) info.timezone = record.timezone;
  if (record.everyMs !== undefined) info.every = record.everyMs / 1000;
  if (record.lastDueAt !== undefined) info.lastDueAt = iso(record.lastDueAt);
  if (nextDueAt !== undefined) info.nextDueAt = iso(nextDueAt);
  return info;
}
