/**
 * The Store on Node's built-in SQLite (`node:sqlite`, no native addon): one file in
 * stateDir, mode 0600 because it holds Jupyter tokens, WAL so readers never wait on writers.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { listingQueries } from './listing.ts';
import { migrate } from './migrations.ts';
import { clusterColumns, toCluster, toEvent, toToken, toUser } from './rows.ts';
import { hashTokenSecret, newTokenId, newTokenSecret } from './tokens.ts';
import type { ClusterRow, EventRow, Store, TokenRow, UserRow } from './types.ts';

export interface StoreOptions {
  /** The clock (tests pass their own). */
  now?: () => Date;
  /** `findToken` writes `last_used` at most this often per token (default 60 s), to spare the disk. */
  lastUsedResolutionMs?: number;
}

/** How often expired sessions are deleted (on a write). */
const SESSION_SWEEP_MS = 60_000;

/** Events a listing returns when it does not say (newest first). */
const DEFAULT_EVENT_LIMIT = 100;

/**
 * Open (creating and migrating if needed) the database at `path`, or an in-memory one.
 * The file and its WAL are readable by the hub's user only.
 */
export function openStore(path: string, options: StoreOptions = {}): Store {
  const now = options.now ?? (() => new Date());
  const lastUsedMs = options.lastUsedResolutionMs ?? 60_000;
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Create it 0600 ourselves: SQLite would use the umask, and gives the WAL the file's mode.
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  }
  const db = new DatabaseSync(path, { timeout: 5000 });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  migrate(db);

  const iso = (d: Date = now()): string => d.toISOString();
  let lastSessionSweep = 0;
  /** updateCluster's statements, one per set of columns changed (a handful in all). */
  const clusterUpdates = new Map<string, StatementSync>();
  const q = {
    upsertUser: db.prepare(`
      INSERT INTO users (login, github_id, admin, instructor, added_by, created_at) VALUES (:login, :github_id, :admin, :instructor, :added_by, :now)
      ON CONFLICT (login) DO UPDATE SET
        github_id = CASE WHEN :set_github_id THEN excluded.github_id ELSE github_id END,
        admin = CASE WHEN :set_admin THEN excluded.admin ELSE admin END,
        instructor = CASE WHEN :set_instructor THEN excluded.instructor ELSE instructor END,
        added_by = coalesce(added_by, excluded.added_by)
      RETURNING *`),
    clusterActivity: db.prepare('UPDATE clusters SET last_activity = ?1 WHERE user = ?2 AND (last_activity IS NULL OR last_activity < ?1)'),
    userActivity: db.prepare('UPDATE users SET last_activity = ?1 WHERE login = ?2 AND (last_activity IS NULL OR last_activity < ?1)'),
    getUser: db.prepare('SELECT * FROM users WHERE login = ?'),
    listUsers: db.prepare('SELECT * FROM users ORDER BY login'),
    deleteUser: db.prepare('DELETE FROM users WHERE login = ?'),
    touchUser: db.prepare('UPDATE users SET last_seen = ? WHERE login = ?'),
    putCluster: db.prepare(`
      INSERT OR REPLACE INTO clusters (user, backend, phase, workers, jupyter_token, url, created_at, ready_at, last_activity)
      VALUES (:user, :backend, :phase, :workers, :jupyter_token, :url, :created_at, :ready_at, :last_activity)`),
    getCluster: db.prepare('SELECT * FROM clusters WHERE user = ?'),
    listClusters: db.prepare('SELECT * FROM clusters ORDER BY user'),
    deleteCluster: db.prepare('DELETE FROM clusters WHERE user = ?'),
    insertToken: db.prepare(`
      INSERT INTO tokens (id, hash, owner, scopes, note, created_at, expires_at)
      VALUES (:id, :hash, :owner, :scopes, :note, :created_at, :expires_at) RETURNING *`),
    tokenByHash: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
    markTokenUsed: db.prepare('UPDATE tokens SET last_used = ? WHERE id = ?'),
    listTokens: db.prepare('SELECT * FROM tokens ORDER BY created_at, id'),
    listTokensOf: db.prepare('SELECT * FROM tokens WHERE owner = ? ORDER BY created_at, id'),
    deleteToken: db.prepare('DELETE FROM tokens WHERE id = ?'),
    deleteTokensOf: db.prepare('DELETE FROM tokens WHERE owner = ?'),
    getSession: db.prepare('SELECT data FROM sessions WHERE id = ? AND expires_at > ?'),
    putSession: db.prepare('INSERT OR REPLACE INTO sessions (id, login, data, expires_at) VALUES (?, ?, ?, ?)'),
    deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
    deleteSessionsOf: db.prepare('DELETE FROM sessions WHERE login = ?'),
    deleteExpiredSessions: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
    addEvent: db.prepare('INSERT INTO events (time, actor, user, kind, detail) VALUES (?, ?, ?, ?, ?) RETURNING *'),
    // total_changes: rows this connection changed; data_version: commits by other connections.
    // (Two statements: the pragma's table-valued form costs twice the pair.)
    ownChanges: db.prepare('SELECT total_changes() AS own'),
    otherCommits: db.prepare('PRAGMA data_version'),
    countClusters: db.prepare('SELECT count(*) AS n FROM clusters WHERE phase = ?'),
    listEvents: db.prepare(`
      SELECT * FROM events
      WHERE (:user IS NULL OR user = :user) AND (:kind IS NULL OR kind = :kind)
      ORDER BY id DESC LIMIT :limit`),
  };

  /** `fn`'s writes as one commit; inside another transaction it joins that one. */
  const transaction = <T>(fn: () => T): T => {
    if (db.isTransaction) return fn();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  };

  return {
    upsertUser(user): UserRow {
      const row = q.upsertUser.get({
        login: user.login,
        github_id: user.githubId ?? null,
        admin: user.admin ? 1 : 0,
        instructor: user.instructor ? 1 : 0,
        added_by: user.addedBy ?? null,
        now: iso(),
        set_github_id: user.githubId === undefined ? 0 : 1,
        set_admin: user.admin === undefined ? 0 : 1,
        set_instructor: user.instructor === undefined ? 0 : 1,
      });
      return toUser(row!);
    },
    getUser(login) {
      const row = q.getUser.get(login);
      return row ? toUser(row) : undefined;
    },
    listUsers: () => q.listUsers.all().map(toUser),
    deleteUser(login) {
      transaction(() => {
        q.deleteTokensOf.run(login);
        q.deleteSessionsOf.run(login);
        q.deleteCluster.run(login);
        q.deleteUser.run(login);
      });
    },
    touchUser(login, when) {
      q.touchUser.run(iso(when), login);
    },

    putCluster(row: ClusterRow) {
      q.putCluster.run({
        user: row.user,
        backend: row.backend,
        phase: row.phase,
        workers: row.workers,
        jupyter_token: row.jupyterToken,
        url: row.url,
        created_at: row.createdAt,
        ready_at: row.readyAt,
        last_activity: row.lastActivity,
      });
    },
    /** Changes the given fields; a user without a cluster row is left as is. */
    updateCluster(user, patch) {
      const sets: string[] = [];
      const values: SQLInputValue[] = [];
      for (const [field, column] of Object.entries(clusterColumns)) {
        const value = patch[field as keyof typeof clusterColumns];
        if (value === undefined) continue;
        sets.push(`${column} = ?`);
        values.push(value);
      }
      if (sets.length === 0) return;
      const sql = `UPDATE clusters SET ${sets.join(', ')} WHERE user = ?`;
      let statement = clusterUpdates.get(sql);
      if (!statement) clusterUpdates.set(sql, statement = db.prepare(sql));
      statement.run(...values, user);
    },
    getCluster(user) {
      const row = q.getCluster.get(user);
      return row ? toCluster(row) : undefined;
    },
    listClusters: () => q.listClusters.all().map(toCluster),
    countClusters: (phase) => Number(q.countClusters.get(phase)!.n),
    atomically: transaction,
    deleteCluster(user) {
      q.deleteCluster.run(user);
    },

    createToken(owner, { scopes, note = '', expiresAt = null }): { token: string; row: TokenRow } {
      const token = newTokenSecret();
      const row = q.insertToken.get({
        id: newTokenId(),
        hash: hashTokenSecret(token),
        owner,
        scopes: JSON.stringify(scopes),
        note,
        created_at: iso(),
        expires_at: expiresAt ? iso(expiresAt) : null,
      });
      return { token, row: toToken(row!) };
    },
    findToken(secret) {
      const raw = q.tokenByHash.get(hashTokenSecret(secret));
      if (!raw) return undefined;
      const row = toToken(raw);
      const at = now();
      if (row.expiresAt !== null && Date.parse(row.expiresAt) <= at.getTime()) return undefined;
      if (row.lastUsed === null || at.getTime() - Date.parse(row.lastUsed) >= lastUsedMs) {
        row.lastUsed = iso(at);
        q.markTokenUsed.run(row.lastUsed, row.id);
      }
      return row;
    },
    listTokens(owner) {
      return (owner === undefined ? q.listTokens.all() : q.listTokensOf.all(owner)).map(toToken);
    },
    deleteToken(id) {
      return Number(q.deleteToken.run(id).changes) > 0;
    },

    getSession(key) {
      const row = q.getSession.get(hashTokenSecret(key), iso());
      return row ? JSON.parse(String(row.data)) as Record<string, unknown> : undefined;
    },
    putSession(key, data, login, expiresAt) {
      const at = now().getTime();
      // Sign-in pages make sessions for every visitor: sweep the expired ones now and then.
      if (at - lastSessionSweep > SESSION_SWEEP_MS) {
        lastSessionSweep = at;
        q.deleteExpiredSessions.run(iso());
      }
      q.putSession.run(hashTokenSecret(key), login, JSON.stringify(data), iso(expiresAt));
    },
    deleteSession(key) {
      q.deleteSession.run(hashTokenSecret(key));
    },
    revokeAccess(login) {
      return transaction(() => ({
        sessions: Number(q.deleteSessionsOf.run(login).changes),
        tokens: Number(q.deleteTokensOf.run(login).changes),
      }));
    },

    addEvent(event): EventRow {
      const row = q.addEvent.get(iso(event.time), event.actor, event.user, event.kind, JSON.stringify(event.detail ?? {}));
      return toEvent(row!);
    },
    /** Newest first; at most `limit` (default 100). */
    listEvents(filter = {}) {
      return q.listEvents
        .all({ user: filter.user ?? null, kind: filter.kind ?? null, limit: filter.limit ?? DEFAULT_EVENT_LIMIT })
        .map(toEvent);
    },

    ...listingQueries(db),
    recordActivity(user, when) {
      const at = iso(when);
      q.clusterActivity.run(at, user);
      q.userActivity.run(at, user);
    },
    version() {
      return `${q.ownChanges.get()!.own}:${q.otherCommits.get()!.data_version}`;
    },
    close() {
      if (db.isOpen) db.close();
    },
  };
}
