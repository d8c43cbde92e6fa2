/**
 * The database schema as an ordered list of steps. `PRAGMA user_version` records how many
 * have run; each step runs in its own transaction, so a crash never leaves half a step.
 * Append new steps; never edit one that has shipped.
 */
import type { DatabaseSync } from 'node:sqlite';

export interface Migration {
  /** What the step does, for the log and for errors. */
  description: string;
  sql: string;
}

/** Step N (1-based) brings the database to `user_version` N. */
export const migrations: readonly Migration[] = [
  {
    description: 'users, clusters, tokens, events',
    sql: `
      CREATE TABLE users (
        login      TEXT PRIMARY KEY,
        github_id  INTEGER,
        admin      INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        last_seen  TEXT
      ) STRICT;

      CREATE TABLE clusters (
        user          TEXT PRIMARY KEY,
        backend       TEXT NOT NULL,
        phase         TEXT NOT NULL CHECK (phase IN ('starting', 'running', 'stopping')),
        workers       INTEGER NOT NULL,
        jupyter_token TEXT NOT NULL,
        url           TEXT,
        created_at    TEXT NOT NULL,
        ready_at      TEXT,
        last_activity TEXT
      ) STRICT;

      -- Only the sha256 of a token's secret is kept (see tokens.ts for why unsalted).
      CREATE TABLE tokens (
        id         TEXT PRIMARY KEY,
        hash       TEXT NOT NULL UNIQUE,
        owner      TEXT NOT NULL,
        scopes     TEXT NOT NULL DEFAULT '[]',
        note       TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        expires_at TEXT,
        last_used  TEXT
      ) STRICT;
      CREATE INDEX tokens_by_owner ON tokens (owner);

      CREATE TABLE events (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        time   TEXT NOT NULL,
        actor  TEXT NOT NULL,
        user   TEXT NOT NULL,
        kind   TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      CREATE INDEX events_by_user ON events (user, id);
      CREATE INDEX events_by_kind ON events (kind, id);
    `,
  },
  {
    description: 'server-side sessions',
    sql: `
      -- The cookie carries the session key; only its sha256 is kept, so the file cannot sign anyone in.
      CREATE TABLE sessions (
        id         TEXT PRIMARY KEY,
        login      TEXT,
        data       TEXT NOT NULL,
        expires_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX sessions_by_login ON sessions (login);
    `,
  },
  {
    description: 'roster: instructors and added users, user activity; indexes for paged lists and event retention',
    sql: `
      -- instructor: made an instructor in the console (auth.admins are admins by config).
      ALTER TABLE users ADD COLUMN instructor INTEGER NOT NULL DEFAULT 0;
      -- added_by: who put the login on the roster (NULL: came in by signing in).
      ALTER TABLE users ADD COLUMN added_by TEXT;
      ALTER TABLE users ADD COLUMN last_activity TEXT;
      CREATE INDEX users_by_last_activity ON users (last_activity);
      CREATE INDEX clusters_by_phase ON clusters (phase);
      CREATE INDEX events_by_time ON events (time);
      CREATE INDEX events_by_user_kind ON events (user, kind);
    `,
  },
];

/**
 * Run the steps the database has not seen yet. Returns the versions before and after.
 * A database from a newer clusterhub is refused rather than guessed at.
 */
export function migrate(db: DatabaseSync, steps: readonly Migration[] = migrations): { from: number; to: number } {
  const from = userVersion(db);
  if (from > steps.length) {
    throw new Error(`the database has schema version ${from}, newer than this clusterhub knows (${steps.length}); upgrade clusterhub or use another stateDir`);
  }
  for (let version = from + 1; version <= steps.length; version++) {
    const step = steps[version - 1]!;
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(step.sql);
      db.exec(`PRAGMA user_version = ${version}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw new Error(`database migration ${version} (${step.description}) failed: ${(err as Error).message}`, { cause: err });
    }
  }
  return { from, to: steps.length };
}

/** `PRAGMA user_version`: how many migration steps this database has run. */
export function userVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get();
  return Number(row?.user_version ?? 0);
}
