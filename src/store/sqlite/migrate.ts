/**
 * Brings a SQLite task store file to the latest schema, or refuses it: a file of another
 * application, or one written by a newer VoidRail, is never touched.
 */
import type { Database } from "bun:sqlite";
import { StoreFailure, TaskStoreError } from "../errors.ts";
import { LATEST_VERSION, type Migration, MIGRATIONS } from "./migrations.ts";

/** "VRTS" (VoidRail task store), in `PRAGMA application_id`. */
export const APPLICATION_ID = 0x56525453;

/** Applies the migrations `db` lacks, each in its own transaction; returns the version reached. */
export function migrate(db: Database, path: string, migrations: readonly Migration[] = MIGRATIONS): number {
  const applicationId = (db.query("PRAGMA application_id").get() as { application_id: number }).application_id;
  const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  const tables = (db.query("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
  if (applicationId !== APPLICATION_ID && (applicationId !== 0 || tables > 0)) {
    throw new TaskStoreError(`${path} is a SQLite database of something else, not a VoidRail task store`, StoreFailure.FOREIGN);
  }
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  if (version > latest) {
    throw new TaskStoreError(
      `${path} was written by a newer VoidRail (schema ${version}; this one knows up to ${latest}): upgrade VoidRail`,
      StoreFailure.TOO_NEW,
    );
  }
  for (const migration of migrations) {
    if (migration.version <= version) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.exec(`PRAGMA user_version = ${migration.version}`);
      db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
    })();
  }
  return Math.max(version, latest);
}

export { LATEST_VERSION };
