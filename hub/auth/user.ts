/**
 * Who is calling: `ctx.state.user` from the session cookie or from an API token, and the
 * middleware that demands a user (or an admin).
 */
import type { Context, Middleware, Next } from 'koa';
import type { Store, UserRow } from '../store/types.ts';
import type { Logger } from '../../shared/log.ts';
import { HttpError } from '../errors.ts';
import { sessionOf } from './session.ts';

/** The signed-in caller, as every route sees it in `ctx.state.user`. */
export interface AuthUser {
  login: string;
  admin: boolean;
  via: 'session' | 'token';
  /** `['all']` for sessions; the token's scopes otherwise. */
  scopes: string[];
  /** When the calling token expires (ISO 8601); absent for a token without expiry and for sessions. */
  expiresAt?: string;
}

/** `last seen` is worth one database write a minute per user, not one per request. */
const TOUCH_INTERVAL_MS = 60_000;

/** The secret of `Authorization: token <secret>` or `Authorization: Bearer <secret>`, if present. */
export function tokenFromHeader(header: string | undefined): string | undefined {
  const match = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * True when the request carries an `Authorization` header: then it alone says who calls (a
 * bad token never falls back to the cookie), and the session cookie is not read at all.
 */
export function authorizationDecides(ctx: Context): boolean {
  return ctx.get('Authorization') !== '';
}

/** A token's rights: admin only while the owner is still an admin and the token allows it. */
export function tokenUser(owner: { login: string; admin: boolean }, scopes: string[], expiresAt: string | null = null): AuthUser {
  const adminScope = scopes.includes('admin') || scopes.includes('all');
  return { login: owner.login, admin: owner.admin && adminScope, via: 'token', scopes: [...scopes], ...(expiresAt ? { expiresAt } : {}) };
}

/**
 * Sets `ctx.state.user` from an `Authorization` header (which, when present, decides alone:
 * a bad token never falls back to the cookie) or from the session's login. A session whose
 * user was deleted from the store is signed out.
 */
export function resolveUser(store: Store, log: Logger, isAdmin: (user: UserRow) => boolean): Middleware {
  const lastTouch = new Map<string, number>();
  const touch = (login: string): void => {
    const now = Date.now();
    if (now - (lastTouch.get(login) ?? 0) < TOUCH_INTERVAL_MS) return;
    lastTouch.set(login, now);
    store.touchUser(login, new Date(now));
  };

  return async function resolve(ctx: Context, next: Next): Promise<void> {
    if (authorizationDecides(ctx)) {
      const secret = tokenFromHeader(ctx.get('Authorization'));
      const row = secret === undefined ? undefined : store.findToken(secret);
      const owner = row === undefined ? undefined : store.getUser(row.owner);
      if (row && owner) {
        ctx.state.user = tokenUser({ login: owner.login, admin: isAdmin(owner) }, row.scopes, row.expiresAt);
        touch(owner.login);
      } else {
        ctx.state.authError = 'Invalid or expired API token.';
      }
      return next();
    }
    const session = sessionOf(ctx);
    const login = session?.passport?.user;
    if (session && typeof login === 'string') {
      const row = store.getUser(login);
      if (row) {
        ctx.state.user = { login: row.login, admin: isAdmin(row), via: 'session', scopes: ['all'] } satisfies AuthUser;
        touch(row.login);
      } else {
        delete session.passport;
        log.info({ user: login }, 'signed out a session whose user no longer exists');
      }
    }
    await next();
  };
}

/** Options of `requireUser`. */
export interface RequireUserOptions {
  /** Only instructors: 403 for everyone else. */
  admin?: boolean;
  /** For pages: send a browser that is not signed in to `/hub/login?next=…` instead of a 401. */
  loginRedirect?: boolean;
}

/** 401 `{status, message}` without a user; 403 when `admin` is asked and the user is not one. */
export function requireUser(options: RequireUserOptions = {}): Middleware {
  return async function mustBeSignedIn(ctx: Context, next: Next): Promise<void> {
    const user = ctx.state.user as AuthUser | undefined;
    if (!user) {
      if (options.loginRedirect && (ctx.method === 'GET' || ctx.method === 'HEAD') && !ctx.state.authError) {
        ctx.redirect(`/hub/login?next=${encodeURIComponent(ctx.originalUrl)}`);
        return;
      }
      throw new HttpError(401, (ctx.state.authError as string | undefined) ?? 'Sign in required.');
    }
    if (options.admin && !user.admin) throw new HttpError(403, 'Only admins may do this.');
    await next();
  };
}
