/**
 * Paged lists over the store: users joined with their clusters, and events. Each page is
 * one prepared statement (cached per filter and sort), with the total from a window
 * count, so a list costs one query whatever the class size, and rows are built only for
 * the page.
 */
import type { DatabaseSync, SQLOutputValue, StatementSync } from 'node:sqlite';
import { toCluster, toEvent, toUser } from './rows.ts';
import type { EventQuery, EventRow, Store, UserListing, UserQuery, UserSort } from './types.ts';

type Raw = Record<string, SQLOutputValue>;

/** The user's latest activity: their own requests or their cluster's, whichever is newer. */
const ACTIVITY = `NULLIF(max(coalesce(u.last_activity, ''), coalesce(u.last_seen, ''), coalesce(c.last_activity, '')), '')`;
const CULLS = `(SELECT count(*) FROM events e WHERE e.user = u.login AND e.kind = 'culled')`;

const SORT_SQL: Record<UserSort, string> = {
  id: 'u.rowid',
  name: 'u.login',
  last_activity: ACTIVITY,
  state: `CASE c.phase WHEN 'running' THEN 1 WHEN 'starting' THEN 2 WHEN 'stopping' THEN 3 ELSE 4 END`,
  workers: 'coalesce(c.workers, -1)',
  launched: 'c.created_at',
  culls: CULLS,
  instructor: 'u.admin',
};

/** Sort keys that can be NULL (the rest never are). */
const NULLABLE_SORTS = new Set<UserSort>(['last_activity', 'launched']);

const STATE_SQL: Record<NonNullable<UserQuery['state']> | 'any', string> = {
  any: '1',
  active: 'c.user IS NOT NULL',
  ready: "c.phase = 'running'",
  inactive: 'c.user IS NULL',
};

/**
 * The page's rows first (filter, sort, LIMIT over the bare join), then the per-row extras
 * (culls, last event) for those rows only, and the total once (an uncorrelated subquery).
 */
function userSelect(where: string, order: string): string {
  return `WITH page AS (
      SELECT u.rowid AS rid FROM users u LEFT JOIN clusters c ON c.user = u.login
      WHERE ${where} ${order} LIMIT :limit OFFSET :offset)
    SELECT ${LISTING_COLUMNS},
      (SELECT count(*) FROM users u LEFT JOIN clusters c ON c.user = u.login WHERE ${where}) AS total
    FROM page JOIN users u ON u.rowid = page.rid ${LISTING_JOINS}
    ${order}`;
}

/** What a listing row is made of, and the joins that bring it. */
const LISTING_COLUMNS = `u.*, ${ACTIVITY} AS activity, ${CULLS} AS culls,
      le.time AS le_time, le.kind AS le_kind, le.actor AS le_actor, le.detail AS le_detail,
      c.user AS c_user, c.backend AS c_backend, c.phase AS c_phase, c.workers AS c_workers,
      c.jupyter_token AS c_jupyter_token, c.url AS c_url, c.created_at AS c_created_at,
      c.ready_at AS c_ready_at, c.last_activity AS c_last_activity`;
const LISTING_JOINS = `LEFT JOIN clusters c ON c.user = u.login
      LEFT JOIN events le ON le.id = (SELECT max(e.id) FROM events e WHERE e.user = u.login)`;

/** One user by login: a primary-key lookup (the paged form with its count is ten times slower). */
const ONE_USER = `SELECT ${LISTING_COLUMNS} FROM users u ${LISTING_JOINS} WHERE u.login = :login`;

function toListing(r: Raw): UserListing {
  const user = toUser(r);
  const cluster = r.c_user === null || r.c_user === undefined ? null : toCluster({
    user: r.c_user, backend: r.c_backend!, phase: r.c_phase!, workers: r.c_workers!, jupyter_token: r.c_jupyter_token!,
    url: r.c_url ?? null, created_at: r.c_created_at!, ready_at: r.c_ready_at ?? null, last_activity: r.c_last_activity ?? null,
  });
  const last = r.le_time === null || r.le_time === undefined ? null
    : { time: String(r.le_time), kind: String(r.le_kind), actor: String(r.le_actor), detail: JSON.parse(String(r.le_detail)) as Record<string, unknown> };
  return { ...user, lastActivity: r.activity === null ? null : String(r.activity), cluster, culls: Number(r.culls ?? 0), lastEvent: last };
}

/** LIKE pattern for a substring, with the wildcards of the input escaped. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/** The list queries of the store, on an open database. */
export function listingQueries(db: DatabaseSync): Pick<Store, 'userPage' | 'userListing' | 'eventPage' | 'pruneEvents'> {
  const cache = new Map<string, StatementSync>();
  const prepared = (key: string, sql: () => string): StatementSync => {
    let statement = cache.get(key);
    if (!statement) {
      statement = db.prepare(sql());
      cache.set(key, statement);
    }
    return statement;
  };
  const one = db.prepare(ONE_USER);
  const events = db.prepare(`SELECT *, count(*) OVER () AS total FROM events
    WHERE (:user IS NULL OR user = :user) AND (:kind IS NULL OR kind = :kind)
    ORDER BY id DESC LIMIT :limit OFFSET :offset`);
  const countEvents = db.prepare('SELECT count(*) AS n FROM events WHERE (:user IS NULL OR user = :user) AND (:kind IS NULL OR kind = :kind)');
  const prune = db.prepare('DELETE FROM events WHERE time < ?');

  return {
    userPage(query: UserQuery) {
      const state = query.state ?? 'any';
      const sort = query.sort ?? 'id';
      const direction = query.descending ? 'DESC' : 'ASC';
      const named = query.nameFilter ? 'name' : 'all';
      const statement = prepared(`${state}:${named}:${sort}:${direction}`, () => {
        const where = `${STATE_SQL[state]}${named === 'name' ? " AND u.login LIKE :name ESCAPE '\\'" : ''}`;
        // Empty values sort last both ways; rowid keeps pages stable between requests.
        const key = SORT_SQL[sort];
        const nullsLast = NULLABLE_SORTS.has(sort) ? `(${key}) IS NULL, ` : '';
        return userSelect(where, `ORDER BY ${nullsLast}${key} ${direction}${sort === 'id' ? '' : `, u.rowid ${direction}`}`);
      });
      const params: Record<string, string | number> = { limit: query.limit, offset: query.offset };
      if (query.nameFilter) params.name = likePattern(query.nameFilter);
      const raw = statement.all(params);
      const rows = raw.map(toListing);
      // Past the last page the window count has no row to ride on: count on its own.
      const total = raw.length > 0 ? Number(raw[0]!.total) : countMatching(query);
      return { rows, total };

      function countMatching(q: UserQuery): number {
        const where = `${STATE_SQL[state]}${q.nameFilter ? " AND u.login LIKE :name ESCAPE '\\'" : ''}`;
        const counter = prepared(`count:${state}:${named}`, () => `SELECT count(*) AS n FROM users u LEFT JOIN clusters c ON c.user = u.login WHERE ${where}`);
        return Number(counter.get(q.nameFilter ? { name: likePattern(q.nameFilter) } : {})!.n);
      }
    },
    userListing(login: string) {
      const row = one.get({ login });
      return row ? toListing(row) : undefined;
    },
    eventPage(query: EventQuery) {
      const filter = { user: query.user ?? null, kind: query.kind ?? null };
      const raw = events.all({ ...filter, limit: query.limit, offset: query.offset });
      const rows: EventRow[] = raw.map(toEvent);
      const total = raw.length > 0 ? Number(raw[0]!.total) : Number(countEvents.get(filter)!.n);
      return { rows, total };
    },
    pruneEvents(before: Date) {
      return Number(prune.run(before.toISOString()).changes);
    },
  };
}
