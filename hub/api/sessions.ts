/** Signing a student out everywhere: every session (each copy of every cookie) and every token. */
import type Router from '@koa/router';
import type { HubDeps } from '../deps.ts';
import { HttpError } from '../errors.ts';
import { adminOnly } from './rules.ts';

/** Ends `login`'s sessions and tokens and records who did it; 404 for an unknown user. */
export function signOutEverywhere(deps: Pick<HubDeps, 'store' | 'log'>, login: string, actor: string): { sessions: number; tokens: number } {
  if (!deps.store.getUser(login)) throw new HttpError(404, `No such user: ${login}`);
  const revoked = deps.store.revokeAccess(login);
  deps.store.addEvent({ actor, user: login, kind: 'signed-out', detail: revoked });
  deps.log.info({ user: login, actor, ...revoked }, 'signed out everywhere');
  return revoked;
}

/** `DELETE /hub/api/users/{name}/sessions`. */
export function sessionRoutes(router: Router, deps: HubDeps): void {
  // Rule: admin. Sessions and tokens of the user end at once (204).
  router.delete('/hub/api/users/:name/sessions', (ctx) => {
    const actor = adminOnly(ctx);
    signOutEverywhere(deps, ctx.params.name!, actor.login);
    ctx.status = 204;
  });
}
