/**
 * Pure decisions about sign-in drawn from the config: public URLs, whether the
 * development sign-in may be offered, and which configurations are refused at start.
 */
import { isIP } from 'node:net';
import type { Config } from '../../config/schema.ts';

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost' || lower.endsWith('.localhost')) return true;
  if (isIP(lower) === 4) return lower.startsWith('127.');
  if (isIP(lower) === 6) {
    if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
    // An IPv4-mapped loopback (::ffff:127.0.0.1) is loopback too.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

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
 * Throws at start when the auth config is unsafe or cannot work, naming the config key:
 * a non-loopback `hub.bind` without `auth.github` (anyone could sign in as anyone), or
 * GitHub on a wildcard bind with no public URL (GitHub could never call back).
 */
export function checkAuthConfig(config: Config): void {
  const bind = config.hub.bind;
  if (config.auth.github === undefined && !isLoopback(bind)) {
    throw new Error(
      `hub.bind is ${bind}, which is not a loopback address, but auth.github is not set: ` +
      'without GitHub only the development sign-in exists, and it lets anyone sign in as anyone. ' +
      'Set auth.github (clientId, clientSecret) or bind to 127.0.0.1.',
    );
  }
  const publicHost = new URL(publicUrl(config)).hostname;
  if (config.auth.github === undefined && !isLoopback(publicHost)) {
    throw new Error(
      `hub.publicUrl is ${config.hub.publicUrl}, which is not on this machine, but auth.github is not set: ` +
      'students would reach the development sign-in, which lets anyone sign in as anyone. ' +
      'Set auth.github (clientId, clientSecret), or use a loopback hub.publicUrl for development.',
    );
  }
  const wildcard = bind === '0.0.0.0' || bind === '::' || bind === '[::]';
  if (config.auth.github !== undefined && wildcard && !config.hub.publicUrl && !config.auth.github.callbackUrl) {
    throw new Error(
      `hub.publicUrl is not set while hub.bind is ${bind}: GitHub cannot call back to a wildcard address. ` +
      'Set hub.publicUrl (e.g. https://hub.example.edu) or auth.github.callbackUrl.',
    );
  }
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
  return /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(name);
}
