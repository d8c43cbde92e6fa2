/** Instructor routes (and token management): every user, reset, forget, stop all, tokens, cull. */
import type Router from '@koa/router';
import { z } from 'zod';
import { hasAdminRights } from '../auth/admins.ts';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import { readBody } from './body.ts';
import { adminOnly, signedIn } from './rules.ts';
import { grantedExpiry } from './token-grants.ts';
import { userModel } from './views.ts';

/** The longest a token may be asked to live (Date cannot hold much more than this from now). */
const MAX_TOKEN_SECONDS = 10 * 365 * 24 * 3600;
const tokenBody = z.strictObject({
  owner: z.string().min(1).optional(),
  scopes: z.array(z.enum(['user', 'admin'])).min(1).default(['user']),
  note: z.string().max(200).default(''),
  expires_in: z.number().int('expires_in must be whole seconds').positive('expires_in must be positive').max(MAX_TOKEN_SECONDS, `expires_in must be at most ${MAX_TOKEN_SECONDS} s (10 years)`).optional(),
});
const cullBody = z.strictObject({ dry_run: z.boolean().default(false) });

/** Routes under /hub/api for instructors. Rule of each: next to it. */
export function adminRoutes(router: Router, deps: HubDeps): void {
  const { store, manager } = deps;
  const knownUser = (name: string) => {
    const user = store.getUser(name);
    if (!user) throw new HttpError(404, `No such user: ${name}`);
    return user;
  };

  // Rule: admin.
  router.get('/hub/api/users', (ctx) => {
    adminOnly(ctx);
    ctx.body = store.listUsers().map((u) => userModel(u, manager, store));
  });

  // Rule: admin. Stops the cluster and wipes the workspace (local) or namespace (Kubernetes).
  router.post('/hub/api/users/:name/reset', async (ctx) => {
    const actor = adminOnly(ctx);
    const user = knownUser(ctx.params.name!);
    await manager.stop(user.login, { actor: actor.login, reason: `reset by ${actor.login}`, removeWorkspace: true });
    store.revokeAccess(user.login);
    ctx.body = userModel(user, manager, store);
  });

  // Rule: admin. Stop, then forget (events stay for the record).
  router.delete('/hub/api/users/:name', async (ctx) => {
    const actor = adminOnly(ctx);
    const user = knownUser(ctx.params.name!);
    if (user.login === actor.login) throw new HttpError(400, 'Admins cannot delete themselves');
    await manager.stop(user.login, { actor: actor.login, reason: `deleted by ${actor.login}`, removeWorkspace: true });
    store.deleteUser(user.login);
    store.addEvent({ actor: actor.login, user: user.login, kind: 'user-deleted' });
    ctx.status = 204;
  });

  // Rule: admin. "Stop everyone after class": every running or pending cluster.
  router.delete('/hub/api/clusters', async (ctx) => {
    const actor = adminOnly(ctx);
    ctx.body = await manager.stopAll({ actor: actor.login, reason: `stopped by ${actor.login} (stop all)` });
  });

  // Rule: signed in; a token for someone else needs admin; the admin scope needs an admin owner
  // and an admin caller; a token never outlives the token that made it.
  router.post('/hub/api/tokens', (ctx) => {
    const me = signedIn(ctx);
    const body = readBody(ctx, tokenBody);
    const owner = body.owner ?? me.login;
    if (owner !== me.login && !me.admin) throw new HttpError(403, 'Only admins may create tokens for others');
    const ownerRow = knownUser(owner);
    if (body.scopes.includes('admin') && !hasAdminRights(ownerRow, deps.config)) throw new HttpError(422, `${owner} is not an admin: the admin scope is not available`);
    const expiresAt = grantedExpiry(me, body.scopes, body.expires_in);
    const { token, row } = store.createToken(owner, { scopes: body.scopes, note: body.note, expiresAt });
    store.addEvent({ actor: me.login, user: owner, kind: 'token-created', detail: { id: row.id, scopes: row.scopes } });
    ctx.status = 201;
    ctx.body = { id: row.id, token, owner, scopes: row.scopes, note: row.note, created: row.createdAt, expires_at: row.expiresAt };
  });

  // Rule: signed in; own tokens, or any for admins. Secrets are never listed.
  router.get('/hub/api/tokens', (ctx) => {
    const me = signedIn(ctx);
    const rows = me.admin && ctx.query.all === '1' ? store.listTokens() : store.listTokens(me.login);
    ctx.body = rows.map((r) => ({ id: r.id, owner: r.owner, scopes: r.scopes, note: r.note, created: r.createdAt, expires_at: r.expiresAt, last_used: r.lastUsed }));
  });

  // Rule: the token's owner or an admin.
  router.delete('/hub/api/tokens/:id', (ctx) => {
    const me = signedIn(ctx);
    const row = store.listTokens().find((t) => t.id === ctx.params.id);
    if (!row || (row.owner !== me.login && !me.admin)) throw new HttpError(404, `No such token: ${ctx.params.id}`);
    store.deleteToken(row.id);
    ctx.status = 204;
  });

  // Rule: admin. Runs a culler sweep now; `dry_run` reports without stopping anything.
  router.post('/hub/api/cull', async (ctx) => {
    adminOnly(ctx);
    const { dry_run } = readBody(ctx, cullBody);
    if (!deps.culler) throw new HttpError(409, 'The culler is disabled (culler.enabled: false)');
    ctx.body = await deps.culler.sweep({ dryRun: dry_run });
  });
}
