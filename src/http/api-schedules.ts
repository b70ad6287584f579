/**
 * Owns the schedules under /api: the list (as `client.schedules.list()` answers it) and the
 * pause and resume actions. A schedule name in the path is checked against the protocol's
 * pattern; an action's body must be empty or `{}`.
 */
import * as v from "valibot";
import { SCHEDULE_NAME_PATTERN, ValidationError } from "../protocol/index.ts";
import { scheduleInfo } from "../tasks/schedules/schedule-view.ts";
import { type ApiSource, firstIssue, jsonBody } from "./api.ts";
import { errorResponse, httpError, json } from "./responses.ts";

type Schedules = NonNullable<ApiSource["schedules"]>;

const EmptyBodySchema = v.strictObject({});

function schedulesOf(source: ApiSource): Schedules {
  if (!source.schedules) throw new ValidationError("the task layer is not running");
  return source.schedules;
}

/** GET /api/schedules: every schedule, with its next due time. */
export function listSchedules(source: ApiSource): Response {
  try {
    const schedules = schedulesOf(source);
    return json({ schedules: schedules.list().map((record) => scheduleInfo(record, schedules.nextDueAt(record))) });
  } catch (error) {
    return errorResponse(error);
  }
}

/** POST /api/schedules/:name/pause and /resume: the schedule as it is afterwards. */
export async function pauseOrResume(source: ApiSource, name: string, action: "pause" | "resume", request: Request): Promise<Response> {
  if (!SCHEDULE_NAME_PATTERN.test(name)) {
    return httpError(400, "VALIDATION_ERROR", "name: 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit");
  }
  const body = await jsonBody(request);
  if (!body.ok) return body.response;
  const parsed = v.safeParse(EmptyBodySchema, body.value);
  if (!parsed.success) return httpError(400, "VALIDATION_ERROR", firstIssue(parsed.issues));
  try {
    const schedules = schedulesOf(source);
    const record = action === "pause" ? await schedules.pause(name) : await schedules.resume(name);
    return json(scheduleInfo(record, schedules.nextDueAt(record)));
  } catch (error) {
    return errorResponse(error);
  }
}
