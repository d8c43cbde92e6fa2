/**
 * The GitHub edge: the passport strategy (configurable URLs for GitHub Enterprise) and the
 * org/team membership questions asked with the signing-in user's own access token.
 */
import type { Strategy } from 'passport';
import type { Config } from '../../config/schema.ts';
import { callbackUrl, githubScopes } from './settings.ts';
import type { GitHubIdentity } from './allow.ts';

/** What the strategy hands the sign-in route once GitHub has answered. */
export interface GitHubSignIn {
  identity: GitHubIdentity;
  accessToken: string;
}

type Verified = (err: unknown, user?: GitHubSignIn | false, info?: unknown) => void;

/** The GitHub URLs passport-github2 talks to, from `auth.github`. */
export function githubUrls(github: NonNullable<Config['auth']['github']>): { authorizationURL: string; tokenURL: string; userProfileURL: string } {
  const base = github.baseUrl.replace(/\/+$/, '');
  const api = github.apiUrl.replace(/\/+$/, '');
  return {
    authorizationURL: `${base}/login/oauth/authorize`,
    tokenURL: `${base}/login/oauth/access_token`,
    userProfileURL: `${api}/user`,
  };
}

/**
 * passport-github2 with `state: true` (passport keeps a nonce in the session and checks it on
 * the callback). Its verify step only reports who signed in; the route decides the rest.
 */
export async function githubStrategy(config: Config): Promise<Strategy> {
  // Loaded at the first sign-in (hub/auth/index.ts), not at start.
  const { default: github2 } = await import('passport-github2');
  const github = config.auth.github;
  if (!github) throw new Error('githubStrategy needs auth.github');
  const options = {
    clientID: github.clientId,
    clientSecret: github.clientSecret,
    callbackURL: callbackUrl(config),
    ...githubUrls(github),
    scope: githubScopes(config),
    userAgent: 'clusterhub',
    // passport-oauth2 picks its session state store from this; the typings only allow a string.
    state: true as unknown as string,
  };
  // Four parameters exactly: passport-oauth2 chooses the call shape by the verify's arity.
  const verify = (accessToken: string, _refreshToken: string, profile: { id: string; username?: string; _json?: { login?: unknown; id?: unknown } }, done: Verified): void => {
    const login = typeof profile._json?.login === 'string' ? profile._json.login : profile.username;
    if (!login) return done(new Error('GitHub returned a profile without a login'));
    const id = Number(profile._json?.id ?? profile.id);
    done(null, { identity: { login, id: Number.isFinite(id) ? id : null }, accessToken });
  };
  return new github2.Strategy(options, verify as never);
}

/** The answer of one membership question. */
type Answer = { entry: string; member: boolean } | { entry: string; error: string };

async function askMembership(apiUrl: string, accessToken: string, login: string, entry: string): Promise<Answer> {
  const [org, team] = entry.split(':') as [string, string | undefined];
  const path = team === undefined
    ? `/orgs/${encodeURIComponent(org)}/members/${encodeURIComponent(login)}`
    : `/orgs/${encodeURIComponent(org)}/teams/${encodeURIComponent(team)}/memberships/${encodeURIComponent(login)}`;
  let res: Response;
  try {
    res = await fetch(`${apiUrl}${path}`, {
      headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/vnd.github+json', 'User-Agent': 'clusterhub' },
      // 302 from /members means "the caller is not a member": it must not be followed.
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    return { entry, error: (err as Error).message };
  }
  if (team === undefined) {
    if (res.status === 204) return { entry, member: true };
    if (res.status === 404 || res.status === 302) return { entry, member: false };
    return { entry, error: `GitHub answered ${res.status}` };
  }
  if (res.status === 404) return { entry, member: false };
  if (res.status !== 200) return { entry, error: `GitHub answered ${res.status}` };
  const body = await res.json().catch(() => ({})) as { state?: unknown };
  // A pending invitation is not membership yet.
  return { entry, member: body.state === 'active' };
}

/**
 * Ask GitHub which of `entries` (`org` or `org:team`) the user belongs to, all at once.
 * `errors` lists the questions GitHub did not answer, so a refusal can say GitHub failed.
 */
export async function confirmMemberships(apiUrl: string, accessToken: string, login: string, entries: string[]): Promise<{ confirmed: Set<string>; errors: string[] }> {
  const api = apiUrl.replace(/\/+$/, '');
  const answers = await Promise.all(entries.map((entry) => askMembership(api, accessToken, login, entry)));
  const confirmed = new Set<string>();
  const errors: string[] = [];
  for (const answer of answers) {
    if ('error' in answer) errors.push(`${answer.entry}: ${answer.error}`);
    else if (answer.member) confirmed.add(answer.entry);
  }
  return { confirmed, errors };
}
