/**
 * Who has instructor rights, decided now rather than remembered: a login removed from
 * `auth.admins` loses them at the next start, for its sessions and its tokens alike. The one
 * place admin rights are derived: `auth.admins`, and the instructors the console made (kept
 * in the store until the console unmakes them; see hub/roster.ts).
 */
import type { Config } from '../../config/schema.ts';
import { isAdminLogin } from './allow.ts';

/** True when `user` is an instructor under the configuration as it is now. */
export function hasAdminRights(user: { login: string; instructor?: boolean }, config: Config): boolean {
  return isAdminLogin(user.login, config) || user.instructor === true;
}

/** Brings the stored admin flags (shown in listings) in line with `hasAdminRights`, at start. */
export function syncAdminFlags(store: { listUsers(): Array<{ login: string; admin: boolean; instructor: boolean }>; upsertUser(u: { login: string; admin: boolean }): unknown }, config: Config): void {
  for (const user of store.listUsers()) {
    const admin = hasAdminRights(user, config);
    if (user.admin !== admin) store.upsertUser({ login: user.login, admin });
  }
}
