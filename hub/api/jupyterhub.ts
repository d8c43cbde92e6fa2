/**
 * The JupyterHub-compatible REST subset (JupyterHub 5 wire shapes), so tools written for
 * JupyterHub work unchanged: jupyterhub-idle-culler, `HubAuth` services, roster scripts.
 * One server per user, the unnamed one (`''`); `user_options` is `{workers}`.
 */
import { readFileSync } from 'node:fs';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import { publicUrl } from '../auth/settings.ts';
import { USER_SORTS, type UserQuery, type UserSort } from '../store/types.ts';
import { readBody, workersField } from './body.ts';
import { streamJupyterHubProgress } from './jupyterhub-progress.ts';
import { flag, paginated, readPage, readQuery, wantsPagination } from './query.ts';
import { adminOnly, selfOrAdmin, signedIn } from './rules.ts';
import { ReplyCache, type CachedReply } from './reply-cache.ts';
import { listingModel, type ModelContext } from './views.ts';

/** The JupyterHub REST API version whose shapes these routes follow. */
export const JUPYTERHUB_API_VERSION = '5.0.0';
const CLUSTERHUB_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** JupyterHub's `slow_stop_timeout`: a stop not done by then is answered 202 and goes on. */
const SLOW_STOP_MS = 10_000;

const userOptions = z.strictObject({ workers: workersField.optional() });
const stopBody = z.strictObject({ remove: z.boolean().optional() });
const STATES = ['active', 'inactive', 'ready'] as const;
/** Distinct list queries and single users whose replies are kept (a class polls a few pages and its own users). */
const KEPT_LISTS = 16;
const KEPT_USERS = 2048;
/** A client polling the unpaged list is warned about the cut once per this long, not per request. */
const TRUNCATION_WARNING_MS = 60_000;

/** `sort=name`, `sort=-last_activity`: JupyterHub's sort parameter (and the console's keys). */
export function readSort(raw: string | undefined): { sort: UserSort; descending: boolean } {
  const value = raw ?? 'id';
  const descending = value.startsWith('-');
  const key = descending ? value.slice(1) : value;
  if (!(USER_SORTS as readonly string[]).includes(key)) throw new HttpError(400, `sort must be one of ${USER_SORTS.join(', ')} (with - for descending), not ${JSON.stringify(value)}`);
  return { sort: key as UserSort, descending };
}

/** JupyterHub's `state` filter; anything else is a 400. */
export function readState(raw: string | undefined): UserQuery['state'] {
  if (raw === undefined || raw === '') return undefined;
  if (!(STATES as readonly string[]).includes(raw)) throw new HttpError(400, `Unrecognized state filter: ${JSON.stringify(raw)} (use active, inactive or ready)`);
  return raw as UserQuery['state'];
}

/** Routes of the JupyterHub REST subset under /hub/api. Rule of each: next to it. */
export function jupyterHubRoutes(router: Router, deps: HubDeps): void {
  const { store, manager, config } = deps;
  const base = publicUrl(config).replace(/\/+$/, '');
  const context = (includeStopped = false): ModelContext => ({ manager, publicUrl: base, includeStopped });
  const knownListing = (name: string) => {
    const listing = store.userListing(name);
    if (!listing) throw new HttpError(404, `No such user: ${name}`);
    return listing;
  };
  const modelOf = (name: string, includeStopped = false) => listingModel(knownListing(name), context(includeStopped));
  let lastTruncationWarning = -Infinity;
  const lists = new ReplyCache<{ total: number; returned: number }>(store, manager, KEPT_LISTS);
  const users = new ReplyCache(store, manager, KEPT_USERS);
  const sendJson = (ctx: Context, reply: CachedReply<unknown>) => {
    ctx.type = 'json';
    // The reply differs by Accept-Encoding (a kept one is gzipped for a client that asks).
    ctx.vary('Accept-Encoding');
    if (reply.gzipped && ctx.get('Accept-Encoding') !== '' && ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
      ctx.set('Content-Encoding', 'gzip');
      ctx.body = reply.gzipped();
      return;
    }
    ctx.body = reply.bytes;
  };

  // Rule: anyone (clients check the version before anything else).
  const root = (ctx: Context) => {
    readQuery(ctx, []);
    ctx.body = { version: JUPYTERHUB_API_VERSION, clusterhub: CLUSTERHUB_VERSION };
  };
  router.get('/hub/api', root);
  router.get('/hub/api/', root);

  // Rule: admin.
  router.get('/hub/api/info', (ctx) => {
    adminOnly(ctx);
    readQuery(ctx, []);
    ctx.body = {
      version: JUPYTERHUB_API_VERSION,
      clusterhub: CLUSTERHUB_VERSION,
      node: process.version,
      spawner: { class: `clusterhub.backends.${manager.backend.kind}`, version: CLUSTERHUB_VERSION },
      authenticator: { class: config.auth.github ? 'clusterhub.auth.github' : 'clusterhub.auth.dev-login', version: CLUSTERHUB_VERSION },
    };
  });

  // Rule: any signed-in user, about themselves (HubAuth's "who owns this token").
  router.get('/hub/api/user', (ctx) => {
    const me = signedIn(ctx);
    const query = readQuery(ctx, ['include_stopped_servers']);
    ctx.body = { ...modelOf(me.login, flag(query.include_stopped_servers)), scopes: me.scopes, token_id: null, session_id: null };
  });

  // Rule: admin. One page: one query; the models are built for that page only.
  router.get('/hub/api/users', (ctx) => {
    adminOnly(ctx);
    const query = readQuery(ctx, ['state', 'offset', 'limit', 'sort', 'name_filter', 'include_stopped_servers']);
    const page = readPage(ctx, query);
    const sort = readSort(query.sort);
    const state = readState(query.state);
    const pages = wantsPagination(ctx);
    // The reply depends on the query, and through `next.url` on the address the client used.
    const reply = lists.get(`${pages}|${ctx.protocol}://${ctx.host}${ctx.originalUrl}`, () => {
      const { rows, total } = store.userPage({ ...page, ...sort, state, nameFilter: query.name_filter || undefined });
      const models = rows.map((row) => listingModel(row, context(flag(query.include_stopped_servers))));
      return { body: pages ? paginated(ctx, models, page, total) : models, note: { total, returned: rows.length } };
    });
    const { total, returned } = reply.note;
    // A client that names offset or limit pages on purpose; one that does not is told, once a minute at most.
    const paging = pages || query.offset !== undefined || query.limit !== undefined;
    if (!paging && total > returned && Date.now() - lastTruncationWarning >= TRUNCATION_WARNING_MS) {
      lastTruncationWarning = Date.now();
      deps.log.warn({ total, returned }, 'GET /hub/api/users without pagination returned the first page only (send Accept: application/jupyterhub-pagination+json, or offset/limit)');
    }
    sendJson(ctx, reply);
  });

  // Rule: self or admin.
  router.get('/hub/api/users/:name', (ctx) => {
    selfOrAdmin(ctx, ctx.params.name!);
    const query = readQuery(ctx, ['include_stopped_servers']);
    const includeStopped = flag(query.include_stopped_servers);
    sendJson(ctx, users.get(`${includeStopped}|${ctx.params.name!}`, () => ({ body: modelOf(ctx.params.name!, includeStopped), note: undefined })));
  });

  // Rule: self or admin. JupyterHub answers 202 while the server starts, and a second call joins it.
  router.post('/hub/api/users/:name/server', (ctx) => {
    const actor = selfOrAdmin(ctx, ctx.params.name!);
    readQuery(ctx, []);
    const user = knownListing(ctx.params.name!);
    const { workers = config.spawn.defaultWorkers } = readBody(ctx, userOptions);
    const phase = manager.view(user.login).phase;
    if (phase === 'running') throw new HttpError(400, `${user.login}'s server is already running`);
    if (phase === 'stopping') throw new HttpError(400, `${user.login}'s server is pending stop`);
    if (phase === 'stopped') manager.launch(user.login, workers, actor.login);
    ctx.status = 202;
    ctx.type = 'text/plain';
    ctx.body = '';
  });

  // Rule: self or admin. 204 once stopped (also when nothing ran), 202 when the stop takes longer.
  router.delete('/hub/api/users/:name/server', async (ctx) => {
    const actor = selfOrAdmin(ctx, ctx.params.name!);
    readQuery(ctx, []);
    const user = knownListing(ctx.params.name!);
    if (readBody(ctx, stopBody).remove) throw new HttpError(400, 'Cannot delete the default server');
    const reason = actor.login === user.login ? 'stopped by the user' : `stopped by ${actor.login}`;
    const stop = manager.stop(user.login, { actor: actor.login, reason });
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((resolve) => { timer = setTimeout(() => resolve('slow'), SLOW_STOP_MS); });
    const outcome = await Promise.race([stop.then(() => 'done' as const), slow]).finally(() => clearTimeout(timer));
    if (outcome === 'slow') stop.catch((err) => deps.log.error({ user: user.login, err }, 'slow stop failed'));
    ctx.status = outcome === 'done' ? 204 : 202;
  });

  // Rule: self or admin. JupyterHub's event stream: steps, then a ready or failed event.
  router.get('/hub/api/users/:name/server/progress', (ctx) => {
    selfOrAdmin(ctx, ctx.params.name!);
    readQuery(ctx, []);
    const user = knownListing(ctx.params.name!);
    const phase = manager.view(user.login).phase;
    const failure = manager.lastFailure(user.login);
    if (phase === 'stopped' && failure === undefined) throw new HttpError(400, `${user.login}'s server is not starting`);
    streamJupyterHubProgress(ctx, user.login, (signal) => manager.progress(user.login, signal));
  });
}
