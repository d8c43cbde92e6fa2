/**
 * JupyterHub's per-user token routes: `GET|POST /users/{name}/tokens`,
 * `GET|DELETE /users/{name}/tokens/{id}`, with its token model. Scopes are clusterhub's
 * (`user`, `admin`); a token never grants more than the credentials that asked for it.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import type { TokenRow } from '../store/types.ts';
import { readBody } from './body.ts';
import { readQuery } from './query.ts';
import { grantedExpiry } from './token-grants.ts';
import { selfOrAdmin } from './rules.ts';

/** Ten years: longer is a mistake, not a plan. */
const MAX_EXPIRES_IN = 10 * 366 * 24 * 3600;
const tokenBody = z.strictObject({
  note: z.string().max(200).optional(),
  expires_in: z.number().int().positive().max(MAX_EXPIRES_IN).nullable().optional(),
  scopes: z.array(z.enum(['user', 'admin'])).min(1).optional(),
});

/** JupyterHub's token model (no secret). */
export function tokenModel(row: TokenRow) {
  return {
    user: row.owner, id: row.id, kind: 'api_token', roles: [] as string[], scopes: row.scopes,
    created: row.createdAt, last_activity: row.lastUsed, expires_at: row.expiresAt, note: row.note,
    session_id: null, oauth_client: 'clusterhub',
  };
}

/** Token routes under /hub/api/users/{name}. Rule of each: next to it. */
export function userTokenRoutes(router: Router, deps: HubDeps): void {
  const { store } = deps;
  const live = (owner: string) => store.listTokens(owner).filter((t) => t.expiresAt === null || Date.parse(t.expiresAt) > Date.now());
  const ownerOf = (ctx: Context) => {
    const actor = selfOrAdmin(ctx, ctx.params.name!);
    readQuery(ctx, []);
    const owner = store.getUser(ctx.params.name!);
    if (!owner) throw new HttpError(404, `No such user: ${ctx.params.name}`);
    return { actor, owner };
  };
  const tokenOf = (ctx: Context) => {
    const { owner } = ownerOf(ctx);
    const row = live(owner.login).find((t) => t.id === ctx.params.id);
    if (!row) throw new HttpError(404, `No such token ${ctx.params.id} for user ${owner.login}`);
    return row;
  };

  // Rule: self or admin. Secrets are never listed.
  router.get('/hub/api/users/:name/tokens', (ctx) => {
    const { owner } = ownerOf(ctx);
    ctx.body = { api_tokens: live(owner.login).map(tokenModel) };
  });

  // Rule: self or admin; scopes at most the caller's, and admin only for an admin owner.
  router.post('/hub/api/users/:name/tokens', (ctx) => {
    const { actor, owner } = ownerOf(ctx);
    const body = readBody(ctx, tokenBody);
    const scopes = body.scopes ?? ['user'];
    const beyond = actor.scopes.includes('all') ? [] : scopes.filter((s) => !actor.scopes.includes(s));
    if (beyond.length > 0) throw new HttpError(403, `this token may not grant ${beyond.join(', ')}`);
    if (scopes.includes('admin') && !owner.admin) throw new HttpError(422, `${owner.login} is not an admin: the admin scope is not available`);
    const note = body.note || `Requested via api${actor.login === owner.login ? '' : ` by user ${actor.login}`}`;
    // The same rules as POST /tokens: admin scope needs admin rights, never outlive the caller's token.
    const expiresAt = grantedExpiry(actor, scopes, body.expires_in ?? undefined);
    const { token, row } = store.createToken(owner.login, { scopes, note, expiresAt });
    store.addEvent({ actor: actor.login, user: owner.login, kind: 'token-created', detail: { id: row.id, scopes: row.scopes } });
    ctx.status = 201;
    ctx.body = { ...tokenModel(row), token };
  });

  // Rule: self or admin.
  router.get('/hub/api/users/:name/tokens/:id', (ctx) => {
    ctx.body = tokenModel(tokenOf(ctx));
  });

  // Rule: self or admin.
  router.delete('/hub/api/users/:name/tokens/:id', (ctx) => {
    const row = tokenOf(ctx);
    store.deleteToken(row.id);
    ctx.status = 204;
  });
}
