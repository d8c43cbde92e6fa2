/** API tokens: create (shown once), list (never the secret), revoke. */
import type Router from '@koa/router';
import { z } from 'zod';
import { hasAdminRights } from '../auth/admins.ts';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import { readBody } from './body.ts';
import { signedIn } from './rules.ts';
import { grantedExpiry } from './token-grants.ts';
import { existingUser } from './views.ts';

/** The longest a token may be asked to live (Date cannot hold much more than this from now). */
const MAX_TOKEN_SECONDS = 10 * 365 * 24 * 3600;
const tokenBody = z.strictObject({
  owner: z.string().min(1).optional(),
  scopes: z.array(z.enum(['user', 'admin'])).min(1).default(['user']),
  note: z.string().max(200).default(''),
  expires_in: z.number().int('expires_in must be whole seconds').positive('expires_in must be positive').max(MAX_TOKEN_SECONDS, `expires_in must be at most ${MAX_TOKEN_SECONDS} s (10 years)`).optional(),
});

/** Routes under /hub/api/tokens. Rule of each: next to it. */
export function tokenRoutes(router: Router, deps: HubDeps): void {
  const { store } = deps;
  // Rule: signed in; a token for someone else needs admin; the admin scope needs an admin owner
  // and an admin caller; a token never outlives the token that made it.
  router.post('/hub/api/tokens', (ctx) => {
    const me = signedIn(ctx);
    const body = readBody(ctx, tokenBody);
    const owner = body.owner ?? me.login;
    if (owner !== me.login && !me.admin) throw new HttpError(403, 'Only admins may create tokens for others');
    const ownerRow = existingUser(store, owner);
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
}
