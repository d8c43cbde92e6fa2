/**
 * Who may sign in: pure allow-list rules over a GitHub identity and the org/team
 * memberships GitHub confirmed. GitHub logins, orgs and team slugs are case-insensitive.
 */
import type { Config } from '../../config/schema.ts';

/** Who GitHub says signed in. */
export interface GitHubIdentity {
  login: string;
  id: number | null;
}

/** Why a user is let in (for the log line), or undefined when they are not. */
export type AllowReason = 'admin' | 'allowAll' | 'allowedUsers' | 'allowedOrgs';

const lower = (s: string): string => s.toLowerCase();

/** True when `login` is in `auth.admins`. */
export function isAdminLogin(login: string, config: Config): boolean {
  return config.auth.admins.some((a) => lower(a) === lower(login));
}

/** Why the login alone (without asking GitHub about orgs) lets the user in, if it does. */
function loginReason(identity: GitHubIdentity, config: Config): AllowReason | undefined {
  if (isAdminLogin(identity.login, config)) return 'admin';
  if (config.auth.allowAll) return 'allowAll';
  if (config.auth.allowedUsers.some((u) => lower(u) === lower(identity.login))) return 'allowedUsers';
  return undefined;
}

/**
 * The `auth.allowedOrgs` entries (`org` or `org:team`) whose membership must be asked of
 * GitHub: none when the login alone decides, so a sign-in costs no extra API calls then.
 */
export function membershipsToCheck(identity: GitHubIdentity, config: Config): string[] {
  return loginReason(identity, config) === undefined ? [...config.auth.allowedOrgs] : [];
}

/**
 * Why the user may sign in, or undefined. `membership` holds the `allowedOrgs` entries
 * GitHub confirmed for this user (an org: a member; `org:team`: an active team member).
 */
export function allowReason(identity: GitHubIdentity, config: Config, membership: ReadonlySet<string>): AllowReason | undefined {
  const byLogin = loginReason(identity, config);
  if (byLogin) return byLogin;
  const confirmed = new Set([...membership].map(lower));
  return config.auth.allowedOrgs.some((entry) => confirmed.has(lower(entry))) ? 'allowedOrgs' : undefined;
}

/** True when the allow-lists let this user in: admins, allowAll, allowedUsers, allowedOrgs. */
export function isAllowed(identity: GitHubIdentity, config: Config, membership: ReadonlySet<string>): boolean {
  return allowReason(identity, config, membership) !== undefined;
}
