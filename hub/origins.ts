/**
 * Origins: with `hub.userSubdomains` every student's cluster is served at
 * `{login}.{hub host}` (CHP host routing), so a page a student serves cannot read the hub's
 * pages or another student's; without it every student shares the hub's origin. The hub's
 * cookie never names a Domain, so it stays on the hub's own host either way.
 */
import type { Context, Next } from 'koa';
import type { Config } from '../config/schema.ts';
import { hostRoutes, pathRoutes, type RouteScheme } from '../proxy/routes.ts';
import { userUrl } from '../spawner/cluster-view.ts';
import { publicUrl } from './auth/settings.ts';

/** How user routes are keyed in the proxy under this config. */
export function routeScheme(config: Config): RouteScheme {
  return config.hub.userSubdomains ? hostRoutes(new URL(publicUrl(config)).hostname) : pathRoutes;
}

/** The URL of a user's JupyterLab as their browser opens it: absolute on their own origin, or a path. */
export function serverUrlOf(config: Config): (user: string) => string {
  if (!config.hub.userSubdomains) return userUrl;
  const hub = new URL(publicUrl(config));
  const scheme = routeScheme(config);
  return (user) => `${hub.protocol}//${scheme.host!(user)}${hub.port ? `:${hub.port}` : ''}${userUrl(user)}`;
}

/** CSP sources for the students' origins (forms may lead there, e.g. into a JupyterLab). */
export function userOriginSources(config: Config): string[] {
  if (!config.hub.userSubdomains) return [];
  const hub = new URL(publicUrl(config));
  return [`${hub.protocol}//*.${hub.hostname}${hub.port ? `:${hub.port}` : ''}`];
}

/**
 * With subdomains, the hub answers only on its own host: a request that reached it on a
 * student's host (no route there yet, or a path Jupyter does not own) is sent to the hub,
 * so no hub page is ever served on a student's origin.
 */
export function hubHostOnly(config: Config) {
  const hub = new URL(publicUrl(config));
  return async function onTheHubsHost(ctx: Context, next: Next): Promise<void> {
    // The Host the browser sent, not X-Forwarded-Host (which a page could set on its own requests).
    const host = ctx.get('Host').replace(/:\d+$/, '').toLowerCase();
    if (!config.hub.userSubdomains || host === hub.hostname.toLowerCase()) return next();
    ctx.status = 302;
    ctx.redirect(`${hub.origin}/hub/home`);
  };
}
