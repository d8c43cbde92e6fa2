/**
 * Adding users and instructors through the API, in JupyterHub's shapes: `POST /users`
 * `{usernames, admin}`, `POST /users/{name}` `{admin}`, `PATCH /users/{name}` `{admin}`.
 * (`DELETE /users/{name}` stops, wipes and forgets: see the admin routes.)
 */
import type Router from '@koa/router';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import { publicUrl } from '../auth/settings.ts';
import { addUsers, checkLogins, setInstructor } from '../roster.ts';
import { readBody } from './body.ts';
import { readQuery } from './query.ts';
import { adminOnly } from './rules.ts';
import { listingModel } from './views.ts';

const createMany = z.strictObject({ usernames: z.array(z.string()).min(1, 'usernames: name at least one user'), admin: z.boolean().default(false) });
const createOne = z.strictObject({ admin: z.boolean().default(false) });
const patchUser = z.strictObject({ admin: z.boolean().optional(), name: z.string().optional() });

/** Roster routes under /hub/api. Rule of each: next to it. */
export function rosterRoutes(router: Router, deps: HubDeps): void {
  const { store, manager } = deps;
  const context = { manager, publicUrl: publicUrl(deps.config).replace(/\/+$/, '') };
  const model = (login: string) => listingModel(store.userListing(login)!, context);

  // Rule: admin. 201 with the users created; 409 when every one existed already.
  router.post('/hub/api/users', (ctx) => {
    const actor = adminOnly(ctx);
    readQuery(ctx, []);
    const body = readBody(ctx, createMany);
    checkLogins(body.usernames);
    const fresh = body.usernames.filter((login) => !store.getUser(login));
    if (fresh.length === 0) throw new HttpError(409, `All ${body.usernames.length} users already exist`);
    const { added } = addUsers(deps, fresh, { instructor: body.admin, actor: actor.login });
    ctx.status = 201;
    ctx.body = added.map((u) => model(u.login));
  });

  // Rule: admin. 201 with the user; 409 when it exists.
  router.post('/hub/api/users/:name', (ctx) => {
    const actor = adminOnly(ctx);
    readQuery(ctx, []);
    const name = ctx.params.name!;
    const body = readBody(ctx, createOne);
    checkLogins([name]);
    if (store.getUser(name)) throw new HttpError(409, `User ${name} already exists`);
    addUsers(deps, [name], { instructor: body.admin, actor: actor.login });
    ctx.status = 201;
    ctx.body = model(name);
  });

  // Rule: admin. Makes or unmakes an instructor; logins follow GitHub, so no renames.
  router.patch('/hub/api/users/:name', (ctx) => {
    const actor = adminOnly(ctx);
    readQuery(ctx, []);
    const name = ctx.params.name!;
    const body = readBody(ctx, patchUser);
    if (!store.getUser(name)) throw new HttpError(404, `No such user: ${name}`);
    if (body.name !== undefined && body.name !== name) throw new HttpError(400, 'Users cannot be renamed: a login is the GitHub account');
    if (body.admin !== undefined) setInstructor(deps, name, body.admin, actor.login);
    ctx.body = model(name);
  });
}
