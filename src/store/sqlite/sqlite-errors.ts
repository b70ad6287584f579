/** SQLite's failures as TaskStoreErrors: one line that says what is wrong with the file. */
import { StoreFailure, TaskStoreError } from "../errors.ts";

export function asStoreError(error: unknown, path: string): TaskStoreError {
  if (error instanceof TaskStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code ?? "";
  if (/BUSY|LOCKED/.test(code) || /database is locked/i.test(message)) {
    return new TaskStoreError(`the task store ${path} is in use by another process (another router?)`, StoreFailure.LOCKED, {
      cause: error,
    });
  }
  if (/NOTADB|CORRUPT/.test(code) || /not a database|malformed/i.test(message)) {
    return new TaskStoreError(`${path} is not a usable task store: ${message}`, StoreFailure.CORRUPT, { cause: error });
  }
  return new TaskStoreError(`cannot open the task store ${path}: ${message}`, StoreFailure.UNWRITABLE, { cause: error });
}
