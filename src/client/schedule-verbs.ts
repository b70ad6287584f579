/**
 * The client's schedule verbs (`client.schedules.set/list/remove/pause/resume`) over the task
 * channel: definitions checked before they leave, answers checked as they come.
 */
import * as v from "valibot";
import {
  encodeMessage,
  SCHEDULE_NAME_PATTERN,
  type ScheduleDefinition,
  type ScheduleInfo,
  ScheduleInfoSchema,
  ScheduleListSchema,
  scheduleToWire,
  ValidationError,
} from "../protocol/index.ts";
import { ANSWER_TIMEOUT_SECONDS, checked, type TaskChannel } from "./task-verbs.ts";

function checkName(name: string): void {
  if (typeof name !== "string" || !SCHEDULE_NAME_PATTERN.test(name)) {
    throw new ValidationError(`not a schedule name: ${JSON.stringify(String(name)).slice(0, 80)}`, { data: { path: "name" } });
  }
}

/** Periodic tasks kept by the router: `client.schedules`. */
export class Schedules {
  constructor(private readonly channel: TaskChannel) {}

  /**
   * Stores a schedule (replacing the one of that name). A bad cron expression, time zone or
   * option is refused with the reason (ValidationError) and nothing is stored.
   *
   * @example
   * await client.schedules.set({ name: "daily-report", cron: "0 3 * * *", timezone: "Europe/Berlin", method: "Report.generate", args: ["daily"] });
   * await client.schedules.set({ name: "heartbeat", every: 60, method: "Health.ping" });
   */
  async set(definition: ScheduleDefinition): Promise<ScheduleInfo> {
    const schedule = scheduleToWire(definition);
    const answer = await this.channel.request(
      (id) => encodeMessage("TASK", { id, op: "schedule.set", schedule }),
      ANSWER_TIMEOUT_SECONDS,
      `schedules.set ${definition.name}`,
    );
    return checked(ScheduleInfoSchema, answer, "schedules.set");
  }

  /** Every schedule, by name, with its next due time. */
  async list(): Promise<ScheduleInfo[]> {
    const answer = await this.channel.request(
      (id) => encodeMessage("TASK", { id, op: "schedule.list" }),
      ANSWER_TIMEOUT_SECONDS,
      "schedules.list",
    );
    return checked(ScheduleListSchema, answer, "schedules.list").schedules;
  }

  /** Deletes the schedule (tasks it fired stay); false when none has that name. */
  async remove(name: string): Promise<boolean> {
    checkName(name);
    const answer = await this.channel.request(
      (id) => encodeMessage("TASK", { id, op: "schedule.remove", name }),
      ANSWER_TIMEOUT_SECONDS,
      `schedules.remove ${name}`,
    );
    return checked(v.object({ removed: v.boolean() }), answer, "schedules.remove").removed;
  }

  /** Stops firing it until resumed; ScheduleNotFoundError for an unknown name. */
  pause(name: string): Promise<ScheduleInfo> {
    return this.toggle(name, "schedule.pause");
  }

  /** Fires it again from now on (due times passed while paused are not fired); ScheduleNotFoundError for an unknown name. */
  resume(name: string): Promise<ScheduleInfo> {
    return this.toggle(name, "schedule.resume");
  }

  private async toggle(name: string, op: "schedule.pause" | "schedule.resume"): Promise<ScheduleInfo> {
    checkName(name);
    const answer = await this.channel.request((id) => encodeMessage("TASK", { id, op, name }), ANSWER_TIMEOUT_SECONDS, `${op} ${name}`);
    return checked(ScheduleInfoSchema, answer, op);
  }
}
