/**
 * koa-session's external store on the hub's Store: the cookie carries only a random key, the
 * session lives in the database, so signing out (or an instructor's "sign out everywhere")
 * ends it for every copy of the cookie.
 */
import type { Store } from '../store/types.ts';
import type { SessionData } from './session.ts';

/** The `store` option of koa-session. */
export interface KoaSessionStore {
  get(key: string, maxAge: number | 'session' | undefined): Promise<SessionData | undefined>;
  set(key: string, data: SessionData, maxAge: number | 'session' | undefined): Promise<void>;
  destroy(key: string): Promise<void>;
}

/** A visitor who is not signed in keeps a session (its CSRF secret) this long: a flood of visits cannot fill the disk for weeks. */
const ANONYMOUS_MAX_AGE_MS = 3600_000;

/** A session store whose rows name the signed-in login, so they can be revoked by login. */
export function databaseSessionStore(store: Store, defaultMaxAgeMs: number): KoaSessionStore {
  return {
    async get(key) {
      return store.getSession(key) as SessionData | undefined;
    },
    async set(key, data, maxAge) {
      const login = typeof data.passport?.user === 'string' ? data.passport.user : null;
      const ms = Math.min(typeof maxAge === 'number' ? maxAge : defaultMaxAgeMs, login === null ? ANONYMOUS_MAX_AGE_MS : Infinity);
      store.putSession(key, data, login, new Date(Date.now() + ms));
    },
    async destroy(key) {
      store.deleteSession(key);
    },
  };
}
