/**
 * Page cursors of `TaskStore.list`: an opaque string that carries the last seq of a page. Both
 * stores use it, so a cursor means the same thing whatever the store.
 */
import { ValidationError } from "../protocol/index.ts";

export function encodeCursor(seq: number): string {
  return Buffer.from(`s${seq}`).toString("base64url");
}

/** The seq a cursor continues before; a cursor that is not one of ours is a ValidationError. */
export function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, "base64url").toString();
  const seq = /^s(\d{1,15})$/.exec(text)?.[1];
  if (seq === undefined) throw new ValidationError("cursor is not one returned by listTasks", { data: { path: "cursor" } });
  return Number(seq);
}
