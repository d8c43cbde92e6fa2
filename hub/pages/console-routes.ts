/**
 * The console's pages and the forms behind them (admin only). Reset, Remove and Stop all
 * take two steps: their buttons lead to a confirmation page, and a POST without
 * `confirm=yes` goes there too and changes nothing.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { csrfToken } from '../auth/csrf.ts';
import type { AuthUser } from '../auth/user.ts';
import { classCsv, readKind, sendCsv } from '../api/events.ts';
import { readState } from '../api/jupyterhub.ts';
import { readQuery } from '../api/query.ts';
import { signOutEverywhere } from '../api/sessions.ts';
import { adminOnly } from '../api/rules.ts';
import type { HubDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import { addUsers, parseLogins, removeUser, setInstructor } from '../roster.ts';
import { USER_SORTS, type UserSort } from '../store/types.ts';
import { confirmBody, eventLogBody } from './console-events.ts';
import { consoleBody, plural, type ConsoleQuery, type ConsoleRow } from './console.ts';

/** What the console borrows from the page routes. */
export interface PageKit {
  page(ctx: Context, title: string, body: string): void;
  /** The signed-in user, or a redirect to sign in. */
  viewer(ctx: Context): AuthUser | undefined;
  seeOther(ctx: Context, url: string): void;
  formWorkers(ctx: Context): number;
}

const PAGE_SIZE = 50;
const EVENTS_PAGE_SIZE = 50;

function pageNumber(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 1;
  if (!/^[1-9]\d*$/.test(raw)) throw new HttpError(400, `page must be a positive integer, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function field(ctx: Context, name: string): string | undefined {
  const value = (ctx.request as { body?: Record<string, unknown> }).body?.[name];
  return typeof value === 'string' ? value : undefined;
}

export function consoleRoutes(router: Router, deps: HubDeps, kit: PageKit): void {
  const { store, manager, config } = deps;
  const back = (ctx: Context, message: string) => kit.seeOther(ctx, `/hub/admin?done=${encodeURIComponent(message)}`);
  const known = (name: string) => {
    if (!store.getUser(name)) throw new HttpError(404, `No such user: ${name}`);
    return name;
  };
  const confirmed = (ctx: Context) => field(ctx, 'confirm') === 'yes';

  // Rule: admin. One page of the class, filtered and sorted by the database.
  router.get('/hub/admin', async (ctx) => {
    if (!kit.viewer(ctx)) return;
    adminOnly(ctx);
    const raw = readQuery(ctx, ['q', 'state', 'sort', 'dir', 'page', 'done']);
    const sort = raw.sort || 'name';
    if (!(USER_SORTS as readonly string[]).includes(sort)) throw new HttpError(400, `sort must be one of ${USER_SORTS.join(', ')}`);
    if (raw.dir !== undefined && !['asc', 'desc'].includes(raw.dir)) throw new HttpError(400, 'dir must be asc or desc');
    const query: ConsoleQuery = { q: raw.q ?? '', state: readState(raw.state) ?? '', sort, desc: raw.dir === 'desc', page: pageNumber(raw.page) };
    const { rows, total } = store.userPage({
      offset: (query.page - 1) * PAGE_SIZE, limit: PAGE_SIZE, sort: sort as UserSort, descending: query.desc,
      state: query.state || undefined, nameFilter: query.q || undefined,
    });
    const outlook = await deps.culler?.outlook?.().catch(() => undefined);
    const consoleRows: ConsoleRow[] = rows.map((u) => {
      const view = manager.view(u.login, { record: u.cluster ?? undefined });
      const cull = outlook?.get(u.login);
      return {
        login: u.login, admin: u.admin, phase: view.phase, workers: view.workers, launched: u.cluster?.createdAt ?? null,
        lastActivity: u.lastActivity, culls: u.culls, idleSeconds: cull?.idleSeconds ?? null, cullAt: cull?.cullAt ?? null,
      };
    });
    const classSize = query.q || query.state ? store.userPage({ offset: 0, limit: 1 }).total : total;
    kit.page(ctx, 'Class', consoleBody({
      rows: consoleRows, total, pageSize: PAGE_SIZE, query, classSize, running: store.listClusters().length,
      csrf: csrfToken(ctx), maxWorkers: config.spawn.maxWorkers, flash: raw.done, warnings: deps.warnings,
    }));
  });

  // Rule: admin.
  router.get('/hub/admin/events', (ctx) => {
    if (!kit.viewer(ctx)) return;
    adminOnly(ctx);
    const raw = readQuery(ctx, ['user', 'kind', 'page']);
    const page = pageNumber(raw.page);
    const kind = readKind(raw.kind);
    const { rows, total } = store.eventPage({ user: raw.user || undefined, kind, offset: (page - 1) * EVENTS_PAGE_SIZE, limit: EVENTS_PAGE_SIZE });
    kit.page(ctx, 'Event log', eventLogBody({ rows, total, pageSize: EVENTS_PAGE_SIZE, user: raw.user ?? '', kind: kind ?? '', page }));
  });

  // Rule: admin.
  router.get('/hub/admin/users.csv', (ctx) => {
    if (!kit.viewer(ctx)) return;
    adminOnly(ctx);
    readQuery(ctx, []);
    sendCsv(ctx, classCsv(store, manager));
  });

  // Rule: admin. The second step of Reset, Remove and Stop all: what will be lost.
  router.get('/hub/admin/confirm', (ctx) => {
    if (!kit.viewer(ctx)) return;
    adminOnly(ctx);
    const raw = readQuery(ctx, ['action', 'user']);
    if (!['reset', 'remove', 'stop-all'].includes(raw.action ?? '')) throw new HttpError(400, 'action must be reset, remove or stop-all');
    const csrf = csrfToken(ctx);
    if (raw.action === 'stop-all') {
      const users = store.listClusters().map((c) => c.user);
      return kit.page(ctx, 'Stop all clusters', confirmBody({
        title: `Stop all ${plural(users.length, 'cluster')}?`, action: '/hub/admin/stop-all', button: 'Stop all clusters', csrf,
        lost: [`Every running computation and unsaved notebook state of ${users.length ? users.slice(0, 20).join(', ') + (users.length > 20 ? ` and ${users.length - 20} more` : '') : 'nobody (no cluster is up)'} is lost.`, 'Workspaces (saved files) are kept.'],
      }));
    }
    const name = known(raw.user ?? '');
    const live = manager.view(name).phase !== 'stopped';
    if (raw.action === 'reset') {
      return kit.page(ctx, `Reset ${name}`, confirmBody({
        title: `Reset ${name}?`, action: `/hub/admin/users/${encodeURIComponent(name)}/reset`, button: `Reset ${name}`, csrf,
        lost: [...(live ? [`${name}'s cluster stops: running work is lost.`] : []), `${name}'s workspace is deleted: every notebook and file in it.`],
      }));
    }
    if (raw.action === 'remove') {
      return kit.page(ctx, `Remove ${name}`, confirmBody({
        title: `Remove ${name} from the class?`, action: `/hub/admin/users/${encodeURIComponent(name)}/remove`, button: `Remove ${name}`, csrf,
        lost: [...(live ? [`${name}'s cluster stops: running work is lost.`] : []), `${name}'s workspace is deleted: every notebook and file in it.`,
          `${name}'s API tokens stop working, and ${name} can no longer sign in unless the configuration allows it.`, 'Their events stay in the log.'],
      }));
    }
    throw new Error(`unhandled confirmation ${raw.action}`);
  });

  // Rule: admin. Adds one login or a pasted list.
  router.post('/hub/admin/users', (ctx) => {
    const actor = adminOnly(ctx);
    const logins = parseLogins(field(ctx, 'logins') ?? '');
    const instructor = field(ctx, 'instructor') === '1';
    const { added, existing } = addUsers(deps, logins, { instructor, actor: actor.login });
    const what = instructor ? 'instructor' : 'student';
    back(ctx, `added ${plural(added.length, what)}${added.length ? `: ${added.map((u) => u.login).join(', ')}` : ''}${existing.length ? `; already in the class: ${existing.join(', ')}` : ''}`);
  });

  // Rule: admin. The row buttons; reset and remove only once confirmed.
  router.post('/hub/admin/users/:name/:verb', async (ctx) => {
    const actor = adminOnly(ctx);
    const name = known(ctx.params.name!);
    const verb = ctx.params.verb!;
    if ((verb === 'reset' || verb === 'remove') && !confirmed(ctx)) {
      return kit.seeOther(ctx, `/hub/admin/confirm?action=${verb}&user=${encodeURIComponent(name)}`);
    }
    if (verb === 'stop') await manager.stop(name, { actor: actor.login, reason: `stopped by ${actor.login}` });
    else if (verb === 'reset') {
      await manager.stop(name, { actor: actor.login, reason: `reset by ${actor.login}`, removeWorkspace: true });
      store.revokeAccess(name);
    } else if (verb === 'signout') signOutEverywhere(deps, name, actor.login);
    else if (verb === 'scale') await manager.scale(name, kit.formWorkers(ctx), actor.login);
    else if (verb === 'remove') await removeUser(deps, name, actor.login);
    else if (verb === 'instructor' || verb === 'uninstructor') setInstructor(deps, name, verb === 'instructor', actor.login);
    else throw new HttpError(404, `Unknown action: ${verb}`);
    back(ctx, `${verb}: ${name}`);
  });

  // Rule: admin, once confirmed.
  router.post('/hub/admin/stop-all', async (ctx) => {
    const actor = adminOnly(ctx);
    if (!confirmed(ctx)) return kit.seeOther(ctx, '/hub/admin/confirm?action=stop-all');
    const { stopped, failed } = await manager.stopAll({ actor: actor.login, reason: `stopped by ${actor.login} (stop all)` });
    back(ctx, `stopped ${plural(stopped.length, 'cluster')}${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
  });

  // Rule: admin.
  router.post('/hub/admin/cull', async (ctx) => {
    adminOnly(ctx);
    if (!deps.culler) throw new HttpError(409, 'The culler is disabled (culler.enabled: false)');
    await deps.culler.sweep({ dryRun: false });
    back(ctx, 'cull sweep finished');
  });
}
