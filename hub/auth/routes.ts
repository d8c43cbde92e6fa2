/**
 * The sign-in routes under /hub/: login page, GitHub OAuth start and callback, the
 * development sign-in, and sign-out. Each route's rule is next to it.
 */
import type { Context, Middleware } from 'koa';
import type Router from '@koa/router';
import type { KoaPassportInstance } from 'koa-passport';
import type { Config } from '../../config/schema.ts';
import type { Store } from '../store/types.ts';
import type { Logger } from '../../shared/log.ts';
import { hasAdminRights } from './admins.ts';
import { allowReason, membershipsToCheck } from './allow.ts';
import { csrfProtect, csrfToken } from './csrf.ts';
import { formField } from './form.ts';
import { confirmMemberships, type GitHubSignIn } from './github.ts';
import { loginPage, logoutPage, signInFailedPage } from './pages.ts';
import { clearSession, destroySession, sessionOf } from './session.ts';
import { isDirectLoopbackRequest, isLoginShape, safeNext } from './settings.ts';
import type { AuthUser } from './user.ts';

export interface SignInDeps {
  config: Config;
  store: Store;
  log: Logger;
  /** passport, loaded by the first sign-in route that needs it. */
  passport: () => Promise<SignInPassport>;
  devLogin: boolean;
}

/** What the sign-in routes run of passport. */
export interface SignInPassport {
  /** The instance with the GitHub strategy; present only when auth.github is configured. */
  github: KoaPassportInstance | undefined;
  /** passport's per-request set-up (`ctx.login`): the routes that sign in run it first. */
  initialize: Middleware;
}

/** What the GitHub strategy reported on the callback. */
interface Outcome {
  err: unknown;
  user: unknown;
  status: number | undefined;
}

function html(ctx: Context, status: number, body: string): void {
  ctx.status = status;
  ctx.type = 'html';
  // Pages carry CSRF tokens and who is signed in: never cache them.
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

/** Sign the user in with a fresh session and send them on (303: the browser then GETs). */
async function signIn(ctx: Context, deps: SignInDeps, login: string, githubId: number | null | undefined, how: string): Promise<void> {
  const next = safeNext(sessionOf(ctx)?.next);
  // Nothing from before sign-in (state nonce, CSRF secret, next) carries over into the signed-in session.
  clearSession(ctx);
  // Admin by auth.admins, or an instructor made in the console (hub/roster.ts).
  const instructor = deps.store.getUser(login)?.instructor === true;
  const row = deps.store.upsertUser({ login, githubId, admin: hasAdminRights({ login, instructor }, deps.config) });
  await (ctx as unknown as { login(user: string): Promise<void> }).login(row.login);
  deps.store.addEvent({ actor: row.login, user: row.login, kind: 'sign-in', detail: { via: how } });
  deps.log.info({ user: row.login, admin: row.admin, via: how }, 'signed in');
  ctx.status = 303;
  ctx.redirect(next ?? '/hub/home');
}

/** Decide what a finished GitHub round-trip means: a page, or a signed-in user. */
async function finishGitHub(ctx: Context, deps: SignInDeps, outcome: Outcome): Promise<void> {
  const { config, log, devLogin } = deps;
  const fail = (status: number, title: string, message: string): void =>
    html(ctx, status, signInFailedPage({ devLogin, title, message }));
  if (outcome.err) {
    // The OAuth library's error carries GitHub's response under `oauthError`: the logger redacts it.
    log.warn({ err: outcome.err }, 'GitHub sign-in failed');
    return fail(502, 'Sign-in failed', 'sign-in failed: GitHub did not answer as expected. Please try again.');
  }
  if (!outcome.user) {
    if (outcome.status === 403) {
      log.warn({ ip: ctx.ip }, 'GitHub callback with a state that does not match the session');
      return fail(403, 'Sign-in failed', 'sign-in failed: state mismatch. Start again from the sign-in page.');
    }
    return fail(403, 'Sign-in cancelled', 'sign-in failed: GitHub did not authorize this hub.');
  }
  const { identity, accessToken } = outcome.user as GitHubSignIn;
  const entries = membershipsToCheck(identity, config);
  const { confirmed, errors } = entries.length === 0
    ? { confirmed: new Set<string>(), errors: [] }
    : await confirmMemberships(config.auth.github!.apiUrl, accessToken, identity.login, entries);
  // Logins an instructor put on the roster may sign in too.
  const reason = allowReason(identity, config, confirmed) ?? (deps.store.getUser(identity.login)?.addedBy ? 'roster' : undefined);
  if (!reason) {
    if (errors.length > 0) {
      log.warn({ user: identity.login, errors }, 'could not ask GitHub about org membership');
      return fail(502, 'Sign-in failed', 'sign-in failed: GitHub did not answer about org membership. Please try again.');
    }
    log.warn({ user: identity.login }, 'refused sign-in: not on the allow-list');
    return fail(403, 'Not allowed', `${identity.login} is not on this hub's allow-list. Ask your instructor.`);
  }
  await signIn(ctx, deps, identity.login, identity.id, `github:${reason}`);
}

/** The request came from this machine, not through another proxy (the dev sign-in's condition). */
const direct = (ctx: Context): boolean => isDirectLoopbackRequest(ctx.req.socket.remoteAddress, ctx.req.headers);

/** Add the sign-in routes (full paths, so the router must have no prefix). */
export function addSignInRoutes(router: Router, deps: SignInDeps): void {
  const { config, devLogin } = deps;
  const github = config.auth.github !== undefined;
  const initialize: Middleware = async (ctx, next) => (await deps.passport()).initialize(ctx, next);
  const authenticate = async (...args: Parameters<KoaPassportInstance['authenticate']>) => (await deps.passport()).github!.authenticate(...args);

  // Anyone: the sign-in page; a signed-in user goes straight on.
  router.get('/hub/login', (ctx) => {
    const next = safeNext(ctx.query.next);
    if (ctx.state.user) return ctx.redirect(next ?? '/hub/home');
    html(ctx, 200, loginPage({ devLogin, devForm: devLogin && direct(ctx), github, csrf: csrfToken(ctx), next }));
  });

  if (github) {
    // Anyone: remember where to go afterwards, then off to GitHub with a state nonce in the session.
    router.get('/hub/oauth_login', initialize, async (ctx, next) => {
      const session = sessionOf(ctx);
      const target = safeNext(ctx.query.next);
      if (session) {
        if (target) session.next = target;
        else delete session.next;
      }
      await (await authenticate('github'))(ctx, next);
    });

    // Anyone coming back from GitHub: the state must match the session's nonce.
    router.get('/hub/oauth_callback', initialize, async (ctx) => {
      if (ctx.query.code === undefined && ctx.query.error === undefined) {
        // Without a code passport would start a new authorization instead of failing.
        return html(ctx, 400, signInFailedPage({ devLogin, title: 'Sign-in failed', message: 'sign-in failed: GitHub sent no authorization code.' }));
      }
      let outcome: Outcome = { err: new Error('GitHub strategy did not finish'), user: false, status: undefined };
      const finish = await authenticate('github', {}, (err, user, _info, status) => {
        outcome = { err, user, status };
      });
      await finish(ctx, async () => {});
      await finishGitHub(ctx, deps, outcome);
    });
  }

  if (devLogin) {
    // Anyone, on loopback only, with the page's CSRF token: sign in as the login typed.
    router.post('/hub/dev-login', csrfProtect(), initialize, async (ctx) => {
      if (!direct(ctx)) {
        deps.log.warn({ ip: ctx.req.socket.remoteAddress }, 'refused a forwarded development sign-in');
        return html(ctx, 403, signInFailedPage({ devLogin, title: 'Sign-in refused', message: 'The development sign-in answers only requests made on this machine, not relayed by a proxy.' }));
      }
      const name = ((formField(ctx, 'name')) ?? '').trim();
      if (!isLoginShape(name)) {
        const next = safeNext(formField(ctx, 'next'));
        return html(ctx, 400, loginPage({ devLogin, devForm: true, github, csrf: csrfToken(ctx), next, error: 'That is not a GitHub login: letters, digits and -, at most 39.' }));
      }
      const session = sessionOf(ctx);
      const next = safeNext(formField(ctx, 'next'));
      if (session && next) session.next = next;
      // No GitHub id to record: keep whatever a GitHub sign-in stored.
      await signIn(ctx, deps, name, undefined, 'dev-login');
    });
  }

  // Anyone: a page with a button; a GET never signs out (a link or prefetch could).
  router.get('/hub/logout', (ctx) => {
    const user = ctx.state.user as AuthUser | undefined;
    html(ctx, 200, logoutPage({ devLogin, csrf: csrfToken(ctx), user }));
  });

  // Anyone with the session's CSRF token: end the session.
  router.post('/hub/logout', csrfProtect(), (ctx) => {
    const user = ctx.state.user as AuthUser | undefined;
    destroySession(ctx);
    if (user) deps.log.info({ user: user.login }, 'signed out');
    ctx.status = 303;
    ctx.redirect('/hub/login');
  });
}
