/**
 * Sign-in for the hub: signed session cookies, GitHub OAuth through passport (or the
 * development sign-in on loopback), API tokens, CSRF. The app installs it with
 * `createAuth(deps).install(app, router)`; routes guard themselves with `requireUser()`
 * and `csrfProtect()`.
 */
import type Koa from 'koa';
import type Router from '@koa/router';
import session from 'koa-session';
import type { KoaPassportInstance } from 'koa-passport';
import type { Config } from '../../config/schema.ts';
import type { Store } from '../store/types.ts';
import type { Logger } from '../../shared/log.ts';
import { layout } from '../pages/layout.ts';
import { csrfToken } from './csrf.ts';
import { githubStrategy } from './github.ts';
import { devBanner } from './pages.ts';
import { addSignInRoutes, type SignInPassport } from './routes.ts';
import { devLoginEnabled, isHttpsPublic } from './settings.ts';
import { authorizationDecides, resolveUser, type AuthUser } from './user.ts';
import { databaseSessionStore } from './session-store.ts';
import { hasAdminRights } from './admins.ts';

export type { AuthUser, RequireUserOptions } from './user.ts';
export { requireUser } from './user.ts';
export { csrfProtect, csrfToken } from './csrf.ts';
export { devLoginEnabled, publicUrl } from './settings.ts';
export { devBanner } from './pages.ts';
export { isAllowed } from './allow.ts';

/** The session cookie's name (its signature cookie is `clusterhub-session.sig`). */
export const SESSION_COOKIE = 'clusterhub-session';
const SESSION_MAX_AGE_MS = 14 * 24 * 3600 * 1000;

export interface AuthDeps {
  config: Config;
  store: Store;
  log: Logger;
  secrets: { cookieSecret: string };
}

/** What the app gets from `createAuth`. */
export interface Auth {
  /**
   * Sets app.keys, installs koa-session (for requests without `Authorization`) and
   * `ctx.state.user` resolution on the app, and the sign-in routes, which run passport, on
   * the router (full `/hub/...` paths: the router has no prefix).
   * Install it after the error handler and before the router's routes.
   */
  install(app: Koa, router: Router): void;
  /** True when the development sign-in is on: every page must then show `devBanner(true)`. */
  devLoginEnabled: boolean;
  /** A complete page for this request: layout with its user, CSRF token and banner filled in. */
  page(ctx: Koa.Context, options: { title: string; body: string }): string;
}

/** Build sign-in from the config; nothing is installed until `install`. */
export function createAuth(deps: AuthDeps): Auth {
  const { config, store, log, secrets } = deps;
  if (secrets.cookieSecret.length < 32) throw new Error('hub.cookieSecret must be at least 32 characters');
  const devLogin = devLoginEnabled(config);
  // passport (koa-passport, and passport-github2 with auth.github: ~30 modules) is loaded by the
  // first request to a sign-in route that runs it, not at start: nothing else uses it.
  let loading: Promise<SignInPassport> | undefined;
  const loadPassport = (): Promise<SignInPassport> => (loading ??= (async () => {
    const { default: koaPassport } = await import('koa-passport');
    const instance: KoaPassportInstance = new koaPassport.KoaPassport();
    if (config.auth.github) instance.use(await githubStrategy(config));
    // The session keeps only the login; the row is read from the store on every request.
    instance.serializeUser((user, done) => done(null, user));
    return { github: config.auth.github ? instance : undefined, initialize: instance.initialize() };
  })());

  return {
    devLoginEnabled: devLogin,

    install(app: Koa, router: Router): void {
      app.keys = [secrets.cookieSecret];
      const secure = isHttpsPublic(config);
      if (secure) {
        // TLS ends before the hub (at the proxy or an ingress): the public URL is what counts.
        app.use((ctx, next) => {
          ctx.cookies.secure = true;
          return next();
        });
      }
      const sessions = session({
        key: SESSION_COOKIE,
        maxAge: SESSION_MAX_AGE_MS,
        httpOnly: true,
        sameSite: 'lax',
        secure,
        signed: true,
        renew: true,
        store: databaseSessionStore(store, SESSION_MAX_AGE_MS),
      }, app);
      // A request with `Authorization` is decided by that header alone (resolveUser): its
      // cookie is never consulted, so its session is neither loaded nor saved, and it never
      // gets a session cookie. Such a request that asks for `ctx.session` gets an empty one.
      app.use((ctx, next) => (authorizationDecides(ctx) ? next() : sessions(ctx, next)));
      // Without GitHub, ctx.login still comes from a passport instance (with no strategy). Only
      // the sign-in routes use passport (ctx.login, the GitHub strategy), so only they run it.
      app.use(resolveUser(store, log, (user) => hasAdminRights(user, config)));
      addSignInRoutes(router, { config, store, log, passport: loadPassport, devLogin });
      if (devLogin) log.warn('development sign-in is on: anyone can sign in as anyone (loopback only)');
    },

    page(ctx, options) {
      const user = ctx.state.user as AuthUser | undefined;
      return layout({ ...options, user, csrf: user ? csrfToken(ctx) : undefined, banner: devBanner(devLogin) });
    },
  };
}
