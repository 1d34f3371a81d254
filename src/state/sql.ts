/** One SQLite connection and its prepared statements, which the table modules (calls, uploads, runs…) share. */
import type Database from "better-sqlite3";

export class Sql {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  /** Prepared statements are compiled once per connection. */
  st(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}

/** Timestamps in the state DB: ISO 8601, UTC. */
export const isoNow = (): string => new Date().toISOString();
