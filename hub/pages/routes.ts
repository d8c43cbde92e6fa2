/** Server-rendered pages and the forms behind them (each works without JavaScript). */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { csrfToken } from '../auth/csrf.ts';
import { devBanner } from '../auth/pages.ts';
import type { AuthUser } from '../auth/user.ts';
import { adminOnly, selfOrAdmin } from '../api/rules.ts';
import type { HubDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import { consoleRoutes } from './console-routes.ts';
import { homeBody } from './home.ts';
import { openWarningBody } from './open.ts';
import { layout } from './layout.ts';

/** Where the dashboards are, relative to the user's Jupyter (jupyter-server-proxy paths). */
export type DashboardLinks = (user: string) => Promise<Record<string, string>>;

const defaultLinks: DashboardLinks = async () => ({ 'Dask dashboard': 'dask/status', 'Spark UI': 'proxy/8080/' });

/** Events about a user's cluster, for the home page's notice. */
const CLUSTER_EVENTS = new Set(['launch', 'ready', 'launch-failed', 'scale', 'stop', 'culled', 'reset', 'lost']);

export function pageRoutes(router: Router, deps: HubDeps, options: { devLogin: boolean }): void {
  const { manager, store, config } = deps;
  const links: DashboardLinks = async (user) => (await deps.links?.(user)) ?? defaultLinks(user);
  const banner = devBanner(options.devLogin);
  const page = (ctx: Context, title: string, body: string) => {
    const user = ctx.state.user as AuthUser;
    ctx.type = 'html';
    ctx.body = layout({ title, body, user, csrf: csrfToken(ctx), banner });
  };
  /** Pages send a signed-out visitor to sign in, and back here afterwards. */
  const viewer = (ctx: Context): AuthUser | undefined => {
    const user = ctx.state.user as AuthUser | undefined;
    if (!user) ctx.redirect(`/hub/login?next=${encodeURIComponent(ctx.path)}`);
    return user;
  };
  /** After a form POST, the browser GETs the next page (303 See Other). */
  const seeOther = (ctx: Context, url: string) => {
    ctx.status = 303;
    ctx.redirect(url);
  };
  const formWorkers = (ctx: Context): number => {
    const raw = (ctx.request as { body?: Record<string, unknown> }).body?.workers;
    const workers = raw === undefined || raw === '' ? config.spawn.defaultWorkers : Number(raw);
    manager.checkWorkers(workers);
    return workers;
  };

  router.get('/', (ctx) => ctx.redirect('/hub/home'));
  router.get('/hub', (ctx) => ctx.redirect('/hub/home'));
  router.get('/hub/', (ctx) => ctx.redirect('/hub/home'));

  // Rule: signed in (pages redirect to sign-in).
  router.get('/hub/home', async (ctx) => {
    const user = viewer(ctx);
    if (!user) return;
    const view = manager.view(user.login);
    // The last thing that happened to the cluster (a sign-in or a token is not news).
    const notice = store.listEvents({ user: user.login, limit: 20 }).find((e) => CLUSTER_EVENTS.has(e.kind));
    page(ctx, 'Home', homeBody({
      login: user.login, view, csrf: csrfToken(ctx), notice,
      defaultWorkers: config.spawn.defaultWorkers, maxWorkers: config.spawn.maxWorkers,
      links: view.phase === 'running' ? await links(user.login) : {},
      filesNote: filesNote(config),
    }));
  });

  // Rule: signed in, own cluster. The no-JavaScript Launch and Stop.
  router.post('/hub/spawn', (ctx) => {
    const user = viewer(ctx);
    if (!user) return;
    manager.launch(user.login, formWorkers(ctx), user.login);
    seeOther(ctx, '/hub/home');
  });
  router.post('/hub/stop', async (ctx) => {
    const user = viewer(ctx);
    if (!user) return;
    await manager.stop(user.login, { actor: user.login, reason: 'stopped by the user' });
    seeOther(ctx, '/hub/home');
  });

  /** The student's JupyterLab with the cluster's token (Jupyter turns it into its own cookie). */
  const labUrl = (name: string, token: string) => `${manager.view(name).url ?? `/user/${name}/`}lab?token=${encodeURIComponent(token)}`;
  /** Owner, or an instructor when `auth.adminAccess` allows it; the running cluster's record. */
  const openable = (ctx: Context, name: string) => {
    const user = selfOrAdmin(ctx, name);
    if (user.login !== name && !config.auth.adminAccess) {
      throw new HttpError(403, `Instructors cannot open students' JupyterLab on this hub (auth.adminAccess is off): in it they would act as ${name}`);
    }
    const record = store.getCluster(name);
    return record?.phase === 'running' ? record : undefined;
  };

  // Rule: self; an admin only with auth.adminAccess, after a warning page.
  router.get('/hub/open/:name', (ctx) => {
    const user = viewer(ctx);
    if (!user) return;
    const name = ctx.params.name!;
    const record = openable(ctx, name);
    if (!record) return ctx.redirect('/hub/home');
    if (user.login === name) return ctx.redirect(labUrl(name, record.jupyterToken));
    page(ctx, `Open ${name}'s JupyterLab`, openWarningBody(name, csrfToken(ctx)));
  });
  router.post('/hub/open/:name', (ctx) => {
    const actor = adminOnly(ctx);
    const name = ctx.params.name!;
    const record = openable(ctx, name);
    if (!record) return seeOther(ctx, '/hub/home');
    store.addEvent({ actor: actor.login, user: name, kind: 'admin-access' });
    seeOther(ctx, labUrl(name, record.jupyterToken));
  });

  // Rule: anyone. The proxy sends /user/{name}/… here when that cluster has no route.
  router.get('/user/:name{/*rest}', (ctx) => {
    if (!viewer(ctx)) return;
    ctx.redirect('/hub/home');
  });

  consoleRoutes(router, deps, { page, viewer, seeOther, formWorkers });
}

/** Where a student's files live and whether the engines' workers can read them (the home page says it). */
export function filesNote(config: HubDeps['config']): string {
  const kept = 'Your files are kept when the cluster stops or is culled; only an instructor\'s reset removes them.';
  if (config.spawn.backend !== 'kubernetes') return `${kept} Workers run beside JupyterLab and read the same files.`;
  if (config.kubernetes.workspace.accessMode === 'ReadWriteMany') return `${kept} Every worker mounts the same workspace at /workspace.`;
  return `${kept} Workers do not see them: give Dask and Spark tasks data from shared storage (an object store or a URL), or send it from the notebook (client.scatter).`;
}
