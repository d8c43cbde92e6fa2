/** Server-rendered pages and the forms behind them (each works without JavaScript). */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { csrfToken } from '../auth/csrf.ts';
import { devBanner } from '../auth/pages.ts';
import type { AuthUser } from '../auth/user.ts';
import { adminOnly, selfOrAdmin } from '../api/rules.ts';
import { signOutEverywhere } from '../api/sessions.ts';
import type { HubDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import { adminBody, type AdminRow } from './admin.ts';
import { homeBody } from './home.ts';
import { openWarningBody } from './open.ts';
import { layout } from './layout.ts';

/** Where the dashboards are, relative to the user's Jupyter (jupyter-server-proxy paths). */
export type DashboardLinks = (user: string) => Promise<Record<string, string>>;

const defaultLinks: DashboardLinks = async () => ({ 'Dask dashboard': 'proxy/8787/status', 'Spark UI': 'proxy/8080/' });

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
    const notice = store.listEvents({ user: user.login, limit: 1 })[0];
    page(ctx, 'Home', homeBody({
      login: user.login, view, csrf: csrfToken(ctx), notice,
      defaultWorkers: config.spawn.defaultWorkers, maxWorkers: config.spawn.maxWorkers,
      links: view.phase === 'running' ? await links(user.login) : {},
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

  // Rule: admin.
  router.get('/hub/admin', async (ctx) => {
    if (!viewer(ctx)) return;
    adminOnly(ctx);
    const outlook = await deps.culler?.outlook?.().catch(() => undefined);
    const rows: AdminRow[] = store.listUsers().map((u) => {
      const view = manager.view(u.login);
      const record = store.getCluster(u.login);
      const cull = outlook?.get(u.login);
      return { login: u.login, admin: u.admin, phase: view.phase, workers: view.workers, lastActivity: record?.lastActivity ?? u.lastSeen, idleSeconds: cull?.idleSeconds ?? null, cullAt: cull?.cullAt ?? null };
    });
    const flash = typeof ctx.query.done === 'string' ? ctx.query.done : undefined;
    page(ctx, 'Admin', adminBody(rows, csrfToken(ctx), config.spawn.maxWorkers, flash));
  });

  // Rule: admin. The admin page's buttons.
  router.post('/hub/admin/users/:name/:verb', async (ctx) => {
    const actor = adminOnly(ctx);
    const name = ctx.params.name!;
    if (!store.getUser(name)) throw new HttpError(404, `No such user: ${name}`);
    const verb = ctx.params.verb;
    if (verb === 'stop') await manager.stop(name, { actor: actor.login, reason: `stopped by ${actor.login}` });
    else if (verb === 'reset') {
      await manager.stop(name, { actor: actor.login, reason: `reset by ${actor.login}`, removeWorkspace: true });
      store.revokeAccess(name);
    } else if (verb === 'signout') signOutEverywhere(deps, name, actor.login);
    else if (verb === 'scale') await manager.scale(name, formWorkers(ctx), actor.login);
    else throw new HttpError(404, `Unknown action: ${verb}`);
    seeOther(ctx, `/hub/admin?done=${encodeURIComponent(`${verb}: ${name}`)}`);
  });
  router.post('/hub/admin/stop-all', async (ctx) => {
    const actor = adminOnly(ctx);
    const { stopped, failed } = await manager.stopAll({ actor: actor.login, reason: `stopped by ${actor.login} (stop all)` });
    seeOther(ctx, `/hub/admin?done=${encodeURIComponent(`stopped ${stopped.length} clusters${failed.length ? `; failed: ${failed.join(', ')}` : ''}`)}`);
  });
  router.post('/hub/admin/cull', async (ctx) => {
    adminOnly(ctx);
    if (!deps.culler) throw new HttpError(409, 'The culler is disabled (culler.enabled: false)');
    await deps.culler.sweep({ dryRun: false });
    seeOther(ctx, `/hub/admin?done=${encodeURIComponent('cull sweep finished')}`);
  });
}
