/**
 * Who has instructor rights, decided now rather than remembered: a login removed from
 * `auth.admins` loses them at the next start, for its sessions and its tokens alike. The one
 * place admin rights are derived (instructors kept in the store would join them here).
 */
import type { Config } from '../../config/schema.ts';
import { isAdminLogin } from './allow.ts';

/** True when `user` is an instructor under the configuration as it is now. */
export function hasAdminRights(user: { login: string }, config: Config): boolean {
  return isAdminLogin(user.login, config);
}

/** Brings the stored admin flags (shown in listings) in line with `hasAdminRights`, at start. */
export function syncAdminFlags(store: { listUsers(): Array<{ login: string; admin: boolean }>; upsertUser(u: { login: string; admin: boolean }): unknown }, config: Config): void {
  for (const user of store.listUsers()) {
    const admin = hasAdminRights(user, config);
    if (user.admin !== admin) store.upsertUser({ login: user.login, admin });
  }
}
