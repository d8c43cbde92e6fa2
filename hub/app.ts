/**
 * The koa application factory: no globals, everything passed in, so a test can build a
 * whole hub on a random port in milliseconds.
 */
import Koa from 'koa';
import Router from '@koa/router';
import { createAuth, csrfProtect } from './auth/index.ts';
import { adminRoutes } from './api/admin.ts';
import { clusterRoutes } from './api/clusters.ts';
import { eventRoutes } from './api/events.ts';
import { jupyterHubRoutes } from './api/jupyterhub.ts';
import { rosterRoutes } from './api/roster.ts';
import { sessionRoutes } from './api/sessions.ts';
import { userTokenRoutes } from './api/user-tokens.ts';
import { adminOnly } from './api/rules.ts';
import { tokenRoutes } from './api/tokens.ts';
import type { HubDeps } from './deps.ts';
import { errorHandler, HttpError } from './errors.ts';
import { bodyTypeGuard, methodGuard } from './edges.ts';
import { requestLogger } from './log.ts';
import { securityHeaders } from './security-headers.ts';
import { hubHostOnly, userOriginSources } from './origins.ts';
import { errorPage } from './pages/errors.ts';
import { pageRoutes } from './pages/routes.ts';

/** Builds the hub's koa app. It listens on nothing until the caller says so. */
export function createApp(deps: HubDeps): Koa {
  const app = new Koa({ proxy: true });
  const router = new Router();
  const auth = createAuth({ config: deps.config, store: deps.store, log: deps.log, secrets: deps.secrets });

  // Errors after the response started (a progress stream whose reader left) are logged, not printed.
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET') return;
    deps.log.error({ err }, 'response stream failed');
  });
  app.use(requestLogger(deps.log));
  app.use(errorHandler(deps.log, (status, message) => errorPage(status, message)));
  app.use(hubHostOnly(deps.config));
  for (const headers of securityHeaders({ formTargets: userOriginSources(deps.config) })) app.use(headers);
  app.use(methodGuard(router));
  app.use(bodyTypeGuard());
  const limit = deps.config.hub.maxBodyBytes;
  // DELETE too: JupyterHub's server DELETE takes a body (`{remove}`).
  const parsedMethods = ['POST', 'PUT', 'PATCH', 'DELETE'];
  // The parser (co-body, qs and their dependencies: ~30 modules) is loaded by the first request
  // that can have a body, not at start: the hub answers reads before it is loaded. Requests of
  // other methods skip it, as the parser itself would.
  let parser: Promise<Koa.Middleware> | undefined;
  const loadParser = () => import('@koa/bodyparser').then(({ bodyParser }) => bodyParser({
    enableTypes: ['json', 'form'],
    parsedMethods,
    jsonLimit: limit,
    formLimit: limit,
    onError: (err) => {
      if ((err as { status?: number }).status === 413) throw new HttpError(413, `Request body too large: at most ${limit} bytes (hub.maxBodyBytes)`);
      throw new HttpError(400, 'Malformed request body: expected JSON (or a form)');
    },
  }) as unknown as Koa.Middleware);
  app.use(async (ctx, next) => {
    if (!parsedMethods.includes(ctx.method.toUpperCase())) return next();
    parser ??= loadParser();
    return (await parser)(ctx, next);
  });
  auth.install(app, router);
  app.use(csrfProtect());

  // Rule: anyone (liveness for probes and the proxy's health check). 503 while the managed
  // proxy is down, so an outside process manager can act; the body says what is wrong.
  router.get('/hub/health', (ctx) => {
    const health = deps.health?.() ?? { status: 'ok' };
    ctx.status = health.status === 'ok' ? 200 : 503;
    ctx.body = health;
  });

  // Rule: admin (Prometheus scrapes with `Authorization: token …`).
  router.get('/hub/metrics', async (ctx) => {
    adminOnly(ctx);
    const registry = await deps.metrics.registry();
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });

  eventRoutes(router, deps);
  jupyterHubRoutes(router, deps);
  rosterRoutes(router, deps);
  userTokenRoutes(router, deps);
  clusterRoutes(router, deps);
  adminRoutes(router, deps);
  sessionRoutes(router, deps);
  tokenRoutes(router, deps);
  pageRoutes(router, deps, { devLogin: auth.devLoginEnabled });

  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true, methodNotAllowed: () => new HttpError(405, 'Method not allowed'), notImplemented: () => new HttpError(405, 'Method not allowed') }));
  return app;
}
