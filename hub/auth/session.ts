/**
 * Typed access to koa-session's `ctx.session` (koa-session adds it to the context without
 * declaring it). The session lives in a signed cookie, so it holds only small values.
 */
import type { Context } from 'koa';

/** What hub/auth keeps in the session. */
export interface SessionData {
  /** passport's record: `user` is the GitHub login. */
  passport?: { user?: unknown };
  /** Secret behind this session's CSRF tokens. */
  csrfSecret?: string;
  /** Local path to return to after GitHub sign-in. */
  next?: string;
  [key: string]: unknown;
}

/** The request's session (created empty on first use), or null once it was destroyed. */
export function sessionOf(ctx: Context): SessionData | null {
  return (ctx as unknown as { session: SessionData | null }).session;
}

/** Forget everything in the session and clear the cookie. */
export function destroySession(ctx: Context): void {
  (ctx as unknown as { session: SessionData | null }).session = null;
}

/** Empty the session but keep it alive (before a login, so nothing from before carries over). */
export function clearSession(ctx: Context): void {
  const session = sessionOf(ctx);
  if (!session) return;
  for (const key of Object.keys(session)) {
    // koa-session's own bookkeeping (`_expire`, `_maxAge`) starts with `_`.
    if (!key.startsWith('_')) delete session[key];
  }
}
