/**
 * CSRF protection for cookie-authenticated requests: a per-session secret, tokens derived
 * from it for pages and forms, and a middleware that checks them on state-changing methods.
 */
import Tokens from 'csrf';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../errors.ts';
import { formField } from './form.ts';
import { sessionOf } from './session.ts';
import type { AuthUser } from './user.ts';

// Stateless: it only holds the token lengths.
const tokens = new Tokens();

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The CSRF token to embed in this session's pages and forms (creates the session secret if needed). */
export function csrfToken(ctx: Context): string {
  const session = sessionOf(ctx);
  if (!session) throw new Error('csrfToken needs a live session (it was destroyed in this request)');
  session.csrfSecret ??= tokens.secretSync();
  return tokens.create(session.csrfSecret);
}

/** True when `token` was made for this session's secret. */
export function isValidCsrf(ctx: Context, token: string | undefined): boolean {
  const secret = sessionOf(ctx)?.csrfSecret;
  return typeof secret === 'string' && typeof token === 'string' && token.length > 0 && tokens.verify(secret, token);
}

/**
 * For POST/PUT/PATCH/DELETE (any non-safe method) that is not token-authenticated, require a
 * valid token in header `X-CSRF-Token` or form field `_csrf`; otherwise 403 `{status, message}`.
 * API tokens are exempt: a browser never attaches them by itself, unlike cookies.
 */
export function csrfProtect(): Middleware {
  return async function checkCsrf(ctx: Context, next: Next): Promise<void> {
    const user = ctx.state.user as AuthUser | undefined;
    if (SAFE_METHODS.has(ctx.method) || user?.via === 'token') return next();
    // An anonymous API call carries no ambient authority: let the route answer 401.
    if (!user && ctx.path.startsWith('/hub/api/')) return next();
    const token = ctx.get('X-CSRF-Token') || formField(ctx, '_csrf');
    if (!isValidCsrf(ctx, token)) {
      throw new HttpError(403, 'Missing or invalid CSRF token: reload the page and try again.');
    }
    await next();
  };
}
