/**
 * API token secrets: how they are made, recognised and hashed.
 *
 * A secret is 32 random bytes, so it cannot be guessed or found in a dictionary: a fast,
 * unsalted sha256 is enough to make a stolen database useless, and it lets a token be
 * found by an indexed lookup of its hash (JupyterHub's reasoning for its API tokens).
 * Slow salted hashes are for passwords people choose, which these are not.
 */
import { hash, randomBytes } from 'node:crypto';

/** Every secret starts with this, so a leaked one is easy to recognise (and to scan for). */
export const TOKEN_PREFIX = 'chub_';

/** A new secret: `chub_` + 32 random bytes, base64url. */
export function newTokenSecret(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** A short random id that names a token in lists and URLs (not a secret). */
export function newTokenId(): string {
  return randomBytes(9).toString('base64url');
}

/** What is stored in place of the secret: hex sha256. */
export function hashTokenSecret(secret: string): string {
  // The one-shot hash: every token-authenticated request hashes its secret.
  return hash('sha256', secret, 'hex');
}
