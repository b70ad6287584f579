/**
 * Serves the schedule ops of `TASK` (schedule.set, .list, .remove, .pause, .resume) on the
 * scheduler; each answer is the JSON payload of one RESULT.
 */
import { encodeJsonOrThrow, type TaskHeader } from "../../protocol/index.ts";
import type { Scheduler } from "./scheduler.ts";
import { scheduleInfo } from "./schedule-view.ts";

export type ScheduleOp = Extract<TaskHeader, { op: `schedule.${string}` }>;

export function isScheduleOp(header: TaskHeader): header is ScheduleOp {
  return header.op.startsWith("schedule.");
}

export async function serveScheduleOp(scheduler: Scheduler, header: ScheduleOp): Promise<Uint8Array> {
  switch (header.op) {
    case "schedule.set": {
      const record = await scheduler.set(header.schedule);
      return encodeJsonOrThrow(scheduleInfo(record, scheduler.nextDueAt(record)));
    }
    case "schedule.list":
      return encodeJsonOrThrow({ schedules: scheduler.list().map((record) => scheduleInfo(record, scheduler.nextDueAt(record))) });
    case "schedule.remove":
      return encodeJsonOrThrow({ removed: await scheduler.remove(header.name) });
    case "schedule.pause": {
      const record = await scheduler.pause(header.name);
      return encodeJsonOrThrow(scheduleInfo(record, scheduler.nextDueAt(record)));
    }
    case "schedule.resume": {
      const record = await scheduler.resume(header.name);
      return encodeJsonOrThrow(scheduleInfo(record, scheduler.nextDueAt(record)));
    }
  }
}
