/** What a caller may put into a new token: never more rights, never a longer life than its own. */
import type { AuthUser } from '../auth/user.ts';
import { HttpError } from '../errors.ts';

/**
 * The new token's expiry, or a refusal: the admin scope needs a caller with admin rights (a
 * `user` token of an instructor has none), and a token made by an expiring token expires no
 * later than it. Sessions are not tokens: they may make tokens without expiry.
 */
export function grantedExpiry(caller: AuthUser, scopes: readonly string[], expiresIn: number | undefined): Date | null {
  if (scopes.includes('admin') && !caller.admin) throw new HttpError(403, 'The admin scope needs a caller with admin rights: this token has none');
  const expiresAt = expiresIn === undefined ? null : new Date(Date.now() + expiresIn * 1000);
  const limit = caller.via === 'token' && caller.expiresAt ? new Date(caller.expiresAt) : null;
  if (limit && (expiresAt === null || expiresAt > limit)) {
    throw new HttpError(422, `expires_in: this token expires at ${limit.toISOString()}; a token it makes must expire no later (expires_in ≤ ${Math.floor((limit.getTime() - Date.now()) / 1000)})`);
  }
  return expiresAt;
}
