/**
 * Pure decisions about sign-in drawn from the config: public URLs and whether the
 * development sign-in may be offered (the config schema refuses unsafe combinations).
 */
import { isIP } from 'node:net';
import { isLoopback } from '../../config/addresses.ts';
import { LOGIN_PATTERN, type Config } from '../../config/schema.ts';

/** The URL students use: `hub.publicUrl`, else `http://{bind}:{port}`; no trailing slash. */
export function publicUrl(config: Config): string {
  if (config.hub.publicUrl) return config.hub.publicUrl.replace(/\/+$/, '');
  const host = isIP(config.hub.bind) === 6 ? `[${config.hub.bind}]` : config.hub.bind;
  return `http://${host}:${config.hub.port}`;
}

/** True when cookies must carry `Secure`: students reach the hub over https. */
export function isHttpsPublic(config: Config): boolean {
  return publicUrl(config).startsWith('https:');
}

/** Where GitHub sends the browser back: `auth.github.callbackUrl` or `{publicUrl}/hub/oauth_callback`. */
export function callbackUrl(config: Config): string {
  return config.auth.github?.callbackUrl ?? `${publicUrl(config)}/hub/oauth_callback`;
}

/** The development sign-in exists only without GitHub, on a loopback bind and a loopback public URL. */
export function devLoginEnabled(config: Config): boolean {
  return config.auth.github === undefined && isLoopback(config.hub.bind) && isLoopback(new URL(publicUrl(config)).hostname);
}

/**
 * True when a request came from this machine itself, not relayed by a reverse proxy: the
 * socket is loopback, there is no `Forwarded` or `X-Real-IP`, and `X-Forwarded-For` holds at
 * most the one loopback hop the hub's own proxy adds. The dev sign-in answers only these.
 */
export function isDirectLoopbackRequest(remoteAddress: string | undefined, headers: Record<string, string | string[] | undefined>): boolean {
  if (remoteAddress === undefined || !isLoopback(remoteAddress)) return false;
  if (headers.forwarded !== undefined || headers['x-real-ip'] !== undefined) return false;
  const xff = headers['x-forwarded-for'];
  if (xff === undefined) return true;
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((h) => h.trim()).filter(Boolean);
  return hops.length <= 1 && hops.every(isLoopback);
}

/** GitHub scopes to ask for: identity always, org membership only when orgs or teams decide. */
export function githubScopes(config: Config): string[] {
  return config.auth.allowedOrgs.length > 0 ? ['read:user', 'read:org'] : ['read:user'];
}

/**
 * A `next` target that stays on this site: a local path starting with one `/`
 * (not `//host` or `/\host`, which browsers treat as another site). Undefined otherwise.
 */
export function safeNext(next: unknown): string | undefined {
  if (typeof next !== 'string' || next.length === 0 || next.length > 2048) return undefined;
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return undefined;
  // Control characters could split headers or confuse URL parsers.
  if (/[\u0000-\u001f\u007f]/.test(next)) return undefined;
  return next;
}

/** A GitHub login's shape (the config schema's rule), for the development sign-in form. */
export function isLoginShape(name: string): boolean {
  return LOGIN_PATTERN.test(name);
}
