/**
 * Task ids: UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. They sort by
 * creation time, and cannot be guessed from one another.
 */
import { randomFillSync } from "node:crypto";

export { TASK_ID_PATTERN } from "../protocol/index.ts";

/** Random bytes for the next ids, drawn 4 KiB at a time (one draw per call cost most of an id). */
const pool = new Uint8Array(4096);
let poolAt = pool.length;
/** Each id takes the ten bytes after its timestamp from the pool. */
const RANDOM_BYTES = 10;
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

export function newTaskId(now = Date.now()): string {
  if (!(now >= 0 && now < 2 ** 48)) throw new RangeError(`a task id holds a time from 0 to 2^48 - 1 ms, not ${now}`);
  if (poolAt + RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const b = poolAt;
  poolAt += RANDOM_BYTES;
  const ms = Math.floor(now);
  const time = `${Math.floor(ms / 0x10000)
    .toString(16)
    .padStart(8, "0")}-${(ms % 0x10000).toString(16).padStart(4, "0")}`;
  const version = HEX[0x70 | (pool[b] & 0x0f)] + HEX[pool[b + 1]];
  const variant = HEX[0x80 | (pool[b + 2] & 0x3f)] + HEX[pool[b + 3]];
  let node = "";
  for (let i = b + 4; i < b + RANDOM_BYTES; i++) node += HEX[pool[i]];
  return `${time}-${version}-${variant}-${node}`;
}

/** The creation time (ms since the epoch) a task id carries. */
export function taskIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
