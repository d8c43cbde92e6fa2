/**
 * The event log and the class export for instructors: `GET /hub/api/events` (paged,
 * filtered by student and kind, newest first) and `GET /hub/api/users.csv`.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { stringify } from 'csv-stringify/sync';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import { EVENT_KINDS, isEventKind } from '../events.ts';
import type { EventRow, Store } from '../store/types.ts';
import type { SpawnManager } from '../../spawner/manager.ts';
import { paginated, readPage, readQuery } from './query.ts';
import { adminOnly } from './rules.ts';

/** One event as the API returns it. */
export function eventModel(e: EventRow) {
  return { id: e.id, time: e.time, actor: e.actor, user: e.user, kind: e.kind, detail: e.detail };
}

/** `kind` from a query, or undefined; 400 for a kind the hub never records. */
export function readKind(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!isEventKind(raw)) throw new HttpError(400, `Unknown event kind: ${JSON.stringify(raw)} (one of ${Object.keys(EVENT_KINDS).join(', ')})`);
  return raw;
}

/** The CSV columns of the class export. */
export const CSV_COLUMNS = ['login', 'instructor', 'cluster state', 'workers', 'launched', 'last activity', 'culls'];

/** The whole class as CSV, one row per user, in login order (one query). */
export function classCsv(store: Store, manager: SpawnManager): string {
  const { rows } = store.userPage({ sort: 'name', offset: 0, limit: Number.MAX_SAFE_INTEGER });
  const records = rows.map((u) => {
    const view = manager.view(u.login, { record: u.cluster ?? undefined });
    return [u.login, u.admin ? 'yes' : 'no', view.phase, view.phase === 'stopped' ? '' : view.workers, u.cluster?.createdAt ?? '', u.lastActivity ?? '', u.culls];
  });
  return stringify([CSV_COLUMNS, ...records]);
}

/** Sends `csv` as a download named `clusterhub-class-{date}.csv`. */
export function sendCsv(ctx: Context, csv: string): void {
  ctx.type = 'text/csv; charset=utf-8';
  ctx.set('Content-Disposition', `attachment; filename="clusterhub-class-${new Date().toISOString().slice(0, 10)}.csv"`);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = csv;
}

/** Event and export routes under /hub/api. Rule of each: next to it. */
export function eventRoutes(router: Router, deps: HubDeps): void {
  const { store, manager } = deps;

  // Rule: admin. Always JupyterHub's paginated shape: `{items, _pagination}`.
  router.get('/hub/api/events', (ctx) => {
    adminOnly(ctx);
    const query = readQuery(ctx, ['user', 'kind', 'offset', 'limit']);
    const page = readPage(ctx, query, 50);
    const { rows, total } = store.eventPage({ ...page, user: query.user || undefined, kind: readKind(query.kind) });
    ctx.body = paginated(ctx, rows.map(eventModel), page, total);
  });

  // Rule: admin.
  router.get('/hub/api/users.csv', (ctx) => {
    adminOnly(ctx);
    readQuery(ctx, []);
    sendCsv(ctx, classCsv(store, manager));
  });
}
