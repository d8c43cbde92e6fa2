/**
 * The class roster as instructors change it, from the console or the REST API: add
 * students and instructors, make or unmake an instructor, remove a user. Every change is
 * an event with who did it.
 *
 * How admins combine: a login in `auth.admins` is an admin because the config says so, at
 * every start and sign-in, and the console cannot unmake it (edit the config instead). An
 * instructor made in the console is kept in the store (`instructor`) and stays an admin
 * across restarts until the console unmakes it. Admin rights are the union of the two.
 */
import type { Config } from '../config/schema.ts';
import type { SpawnManager } from '../spawner/manager.ts';
import { isAdminLogin } from './auth/allow.ts';
import { hasAdminRights } from './auth/admins.ts';
import { isLoginShape } from './auth/settings.ts';
import { HttpError } from './errors.ts';
import type { Store, UserRow } from './store/types.ts';

export interface RosterDeps {
  config: Config;
  store: Store;
  manager: SpawnManager;
}

/** What adding a list of logins did. */
export interface AddResult {
  added: UserRow[];
  /** Already on the roster (an instructor flag asked for is still applied). */
  existing: string[];
}

/** Splits a pasted list (lines, commas, spaces, `@` prefixes) into logins, first spelling kept. */
export function parseLogins(text: string): string[] {
  const seen = new Set<string>();
  const logins: string[] = [];
  for (const raw of text.split(/[\s,;]+/)) {
    const login = raw.replace(/^@/, '');
    if (login === '' || seen.has(login.toLowerCase())) continue;
    seen.add(login.toLowerCase());
    logins.push(login);
  }
  return logins;
}

/** 400 naming every login that is not a GitHub login; nothing is added then. */
export function checkLogins(logins: readonly string[]): void {
  if (logins.length === 0) throw new HttpError(400, 'Name at least one GitHub login');
  const bad = logins.filter((l) => !isLoginShape(l));
  if (bad.length > 0) {
    throw new HttpError(400, `Not a GitHub login (letters, digits and -, at most 39): ${bad.slice(0, 10).join(', ')}${bad.length > 10 ? ` and ${bad.length - 10} more` : ''}`);
  }
}

/** Adds logins to the roster (they may then sign in); `instructor` makes them instructors too. */
export function addUsers(deps: RosterDeps, logins: readonly string[], options: { instructor: boolean; actor: string }): AddResult {
  checkLogins(logins);
  const result: AddResult = { added: [], existing: [] };
  for (const login of logins) {
    const before = deps.store.getUser(login);
    const row = deps.store.upsertUser({
      login, addedBy: options.actor,
      ...(options.instructor ? { instructor: true, admin: true } : {}),
    });
    if (before) {
      result.existing.push(login);
      if (options.instructor && !before.admin) deps.store.addEvent({ actor: options.actor, user: login, kind: 'instructor-added' });
    } else {
      result.added.push(row);
      deps.store.addEvent({ actor: options.actor, user: login, kind: 'user-added', detail: { instructor: options.instructor } });
    }
  }
  return result;
}

/** Makes or unmakes an instructor. A config admin cannot be unmade here (409, naming the key). */
export function setInstructor(deps: RosterDeps, login: string, instructor: boolean, actor: string): UserRow {
  const user = deps.store.getUser(login);
  if (!user) throw new HttpError(404, `No such user: ${login}`);
  const byConfig = isAdminLogin(login, deps.config);
  if (!instructor && byConfig) throw new HttpError(409, `${login} is an admin through auth.admins in the configuration; remove them there`);
  if (!instructor && login === actor) throw new HttpError(400, 'Instructors cannot unmake themselves');
  const row = deps.store.upsertUser({ login, instructor, admin: hasAdminRights({ login, instructor }, deps.config) });
  if (row.admin !== user.admin) deps.store.addEvent({ actor, user: login, kind: instructor ? 'instructor-added' : 'instructor-removed' });
  return row;
}

/** Stops the user's cluster, wipes their workspace, and forgets them (their events stay). */
export async function removeUser(deps: RosterDeps, login: string, actor: string): Promise<void> {
  const user = deps.store.getUser(login);
  if (!user) throw new HttpError(404, `No such user: ${login}`);
  if (login === actor) throw new HttpError(400, 'Admins cannot delete themselves');
  await deps.manager.stop(login, { actor, reason: `deleted by ${actor}`, removeWorkspace: true });
  deps.store.deleteUser(login);
  deps.store.addEvent({ actor, user: login, kind: 'user-deleted' });
}
