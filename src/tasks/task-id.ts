/**
 * Task ids: UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. They sort by
 * creation time, and cannot be guessed from one another.
 */
import { randomBytes } from "node:crypto";

export { TASK_ID_PATTERN } from "../protocol/index.ts";

export function newTaskId(now = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6] & 0x0f);
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The creation time (ms since the epoch) a task id carries. */
export function taskIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
