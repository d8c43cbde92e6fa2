/** Just the part of koa-passport (which ships no types) that hub/auth uses. */
declare module 'koa-passport' {
  import type { Middleware } from 'koa';
  import type { Strategy } from 'passport';

  /** Called by a strategy when it is done: an error, a user (or false) and why. */
  type AuthenticateCallback = (err: unknown, user: unknown, info: unknown, status?: number) => unknown;

  /** A passport instance wired for koa (no shared singleton). */
  interface KoaPassportInstance {
    use(strategy: Strategy): this;
    serializeUser(fn: (user: unknown, done: (err: unknown, id?: unknown) => void) => void): void;
    deserializeUser(fn: (id: unknown, done: (err: unknown, user?: unknown) => void) => void): void;
    /** Adds `ctx.login(user)`, `ctx.logout()` and `ctx.isAuthenticated()`. */
    initialize(): Middleware;
    authenticate(strategy: string, options?: Record<string, unknown>, callback?: AuthenticateCallback): Middleware;
  }

  const koaPassport: { KoaPassport: new () => KoaPassportInstance };
  export default koaPassport;
  export type { KoaPassportInstance, AuthenticateCallback };
}
