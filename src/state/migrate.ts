/**
 * The schema lives in migrations/NNN_name.sql, applied in order, each in its own transaction, and recorded in
 * schema_migrations. A DB with migrations this version does not know is refused (schema-guard.ts).
 */
import type Database from "better-sqlite3";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../base/paths.js";
import { checkSchemaVersion } from "./schema-guard.js";
import { isoNow } from "./sql.js";

/** The migration files this release has, in order. */
function migrationFiles(): { dir: string; files: string[] } {
  const dir = join(packageRoot(), "migrations");
  const files = readdirSync(dir)
    .filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f))
    .sort();
  return { dir, files };
}

/** How many of this release's migrations a DB lacks (read only; a newer DB is refused as by migrate). */
export function pendingMigrations(db: Database.Database): number {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  const { files } = migrationFiles();
  if (!exists) return files.length;
  const applied = new Set(
    db
      .prepare("SELECT version FROM schema_migrations")
      .pluck()
      .all()
      .map((v) => Number(v)),
  );
  checkSchemaVersion(db, applied, files);
  return files.filter((f) => !applied.has(Number(f.slice(0, 3)))).length;
}

export function migrate(db: Database.Database): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
  );
  const applied = new Set(
    db
      .prepare("SELECT version FROM schema_migrations")
      .pluck()
      .all()
      .map((v) => Number(v)),
  );
  const { dir, files } = migrationFiles();
  checkSchemaVersion(db, applied, files);
  for (const file of files) {
    const version = Number(file.slice(0, 3));
    if (applied.has(version)) continue;
    const sql = readFileSync(join(dir, file), "utf8");
    db.transaction(() => {
      db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        version,
        file,
        isoNow(),
      );
    })();
  }
}
