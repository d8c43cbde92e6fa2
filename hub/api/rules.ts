/** Authorization rules, one line each, read next to the routes that use them. */
import type { Context } from 'koa';
import { HttpError } from '../errors.ts';
import type { AuthUser } from '../auth/index.ts';

/**
 * The signed-in user; 401 without credentials, 403 for a bad or expired token (as JupyterHub
 * answers, which its clients such as HubAuth read as "no such user").
 */
export function signedIn(ctx: Context): AuthUser {
  const user = ctx.state.user as AuthUser | undefined;
  if (!user && ctx.state.authError) throw new HttpError(403, ctx.state.authError as string);
  if (!user) throw new HttpError(401, 'Sign in first, or send Authorization: token <token>');
  return user;
}

/** The user may act on `name`'s resources: it is theirs, or they are an admin. */
export function selfOrAdmin(ctx: Context, name: string): AuthUser {
  const user = signedIn(ctx);
  if (user.login !== name && !user.admin) throw new HttpError(403, `${user.login} may not act on ${name}'s cluster`);
  return user;
}

/** Only admins (instructors). */
export function adminOnly(ctx: Context): AuthUser {
  const user = signedIn(ctx);
  if (!user.admin) throw new HttpError(403, 'Only admins may do this');
  return user;
}
