/**
 * Why a task store cannot be used. The router refuses to start on one (exit 78 from the CLI)
 * rather than run with half a store.
 */

export const StoreFailure = {
  /** The file is not a SQLite database, or is damaged. */
  CORRUPT: "CORRUPT",
  /** The file or its folder cannot be opened or written. */
  UNWRITABLE: "UNWRITABLE",
  /** A SQLite database of something else. */
  FOREIGN: "FOREIGN",
  /** Another process (a second router) holds the file. */
  LOCKED: "LOCKED",
  /** Written by a newer VoidRail, with migrations this one does not know. */
  TOO_NEW: "TOO_NEW",
} as const;
export type StoreFailure = (typeof StoreFailure)[keyof typeof StoreFailure];

export class TaskStoreError extends Error {
  override readonly name = "TaskStoreError";
  readonly code = "STORE_ERROR";

  constructor(
    message: string,
    readonly reason: StoreFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
