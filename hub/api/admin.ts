/** Instructor routes: every user, reset, forget, stop all, cull. */
import type Router from '@koa/router';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import { readBody } from './body.ts';
import { removeUser } from '../roster.ts';
import { adminOnly } from './rules.ts';
import { existingUser, userModel } from './views.ts';

const cullBody = z.strictObject({ dry_run: z.boolean().default(false) });

/** Routes under /hub/api for instructors. Rule of each: next to it. */
export function adminRoutes(router: Router, deps: HubDeps): void {
  const { store, manager } = deps;
  const knownUser = (name: string) => existingUser(store, name);

  // Rule: admin. Stops the cluster, wipes the workspace (local) or namespace (Kubernetes), signs the user out everywhere.
  router.post('/hub/api/users/:name/reset', async (ctx) => {
    const actor = adminOnly(ctx);
    const user = knownUser(ctx.params.name!);
    await manager.stop(user.login, { actor: actor.login, reason: `reset by ${actor.login}`, removeWorkspace: true });
    store.revokeAccess(user.login);
    ctx.body = userModel(user, manager, store);
  });

  // Rule: admin. Stop, wipe the workspace, then forget (events stay for the record).
  router.delete('/hub/api/users/:name', async (ctx) => {
    const actor = adminOnly(ctx);
    await removeUser(deps, ctx.params.name!, actor.login);
    ctx.status = 204;
  });

  // Rule: admin. "Stop everyone after class": every running or pending cluster.
  router.delete('/hub/api/clusters', async (ctx) => {
    const actor = adminOnly(ctx);
    ctx.body = await manager.stopAll({ actor: actor.login, reason: `stopped by ${actor.login} (stop all)` });
  });

  // Rule: admin. Runs a culler sweep now; `dry_run` reports without stopping anything.
  router.post('/hub/api/cull', async (ctx) => {
    adminOnly(ctx);
    const { dry_run } = readBody(ctx, cullBody);
    if (!deps.culler) throw new HttpError(409, 'The culler is disabled (culler.enabled: false)');
    ctx.body = await deps.culler.sweep({ dryRun: dry_run });
  });
}
