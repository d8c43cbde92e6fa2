/**
 * GitHub logins → Kubernetes names, with KubeSpawner's "safe" scheme.
 * A login that is already a clean DNS-1123 label is kept, so most names stay readable;
 * anything else is slugged and suffixed with a hash of the original, so two different
 * logins never share a name and a hashed name (it contains `---`) never equals a kept one.
 */
import { createHash } from 'node:crypto';

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** `---` + 8 hex characters. */
const hashSuffixLength = 11;

/** A valid DNS-1123 label of at most `maxLength` characters without `--` (reserved for hashed names). */
export function isSafeName(name: string, maxLength = 63): boolean {
  return name.length <= maxLength && dnsLabel.test(name) && !name.includes('--');
}

/**
 * The login itself when it is already safe, else `{slug}---{8 hex of sha256(login)}`: the slug
 * is the lowercased login with every run of other characters turned into one `-`, trimmed of
 * dashes and cut so the whole fits `maxLength` (at least 12, room for `x---` + hash).
 */
export function safeName(login: string, maxLength = 63): string {
  if (maxLength < hashSuffixLength + 1) throw new RangeError(`maxLength must be at least ${hashSuffixLength + 1}`);
  if (isSafeName(login, maxLength)) return login;
  const hash = createHash('sha256').update(login, 'utf8').digest('hex').slice(0, 8);
  const slug = login.toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, maxLength - hashSuffixLength)
    .replace(/^-+|-+$/g, '');
  return `${slug || 'x'}---${hash}`;
}

/** The namespace of a user's cluster: `{prefix}-{safe login}`, at most 63 characters. */
export function namespaceFor(prefix: string, login: string): string {
  return `${prefix}-${safeName(login, 63 - prefix.length - 1)}`;
}
