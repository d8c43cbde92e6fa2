/** A user's own resources: who am I, their user model, their cluster and its progress. */
import type Router from '@koa/router';
import { z } from 'zod';
import { HttpError } from '../errors.ts';
import type { HubDeps } from '../deps.ts';
import { readBody, workersField } from './body.ts';
import { selfOrAdmin } from './rules.ts';
import { streamProgress } from './sse.ts';
import { userModel } from './views.ts';

const launchBody = z.strictObject({ workers: workersField.optional() });
const scaleBody = z.strictObject({ workers: workersField });

/** Routes under /hub/api for one user's cluster. Rule of each: next to it. */
export function clusterRoutes(router: Router, deps: HubDeps): void {
  const { store, manager, config } = deps;
  const knownUser = (name: string) => {
    const user = store.getUser(name);
    if (!user) throw new HttpError(404, `No such user: ${name}`);
    return user;
  };

  // Rule: self or admin. A second click joins the pending launch (202 either way).
  router.post('/hub/api/users/:name/cluster', (ctx) => {
    const actor = selfOrAdmin(ctx, ctx.params.name!);
    const user = knownUser(ctx.params.name!);
    const { workers = config.spawn.defaultWorkers } = readBody(ctx, launchBody);
    manager.launch(user.login, workers, actor.login);
    ctx.status = 202;
    ctx.body = { ...userModel(user, manager, store), progress_url: `/hub/api/users/${user.login}/cluster/progress` };
  });

  // Rule: self or admin.
  router.get('/hub/api/users/:name/cluster/progress', (ctx) => {
    selfOrAdmin(ctx, ctx.params.name!);
    const user = knownUser(ctx.params.name!);
    streamProgress(ctx, (signal) => manager.progress(user.login, signal));
  });

  // Rule: self or admin.
  router.patch('/hub/api/users/:name/cluster', async (ctx) => {
    const actor = selfOrAdmin(ctx, ctx.params.name!);
    const user = knownUser(ctx.params.name!);
    const { workers } = readBody(ctx, scaleBody);
    await manager.scale(user.login, workers, actor.login);
    ctx.body = userModel(user, manager, store);
  });

  // Rule: self or admin. Waits for the stop: 204 means nothing is left.
  router.delete('/hub/api/users/:name/cluster', async (ctx) => {
    const actor = selfOrAdmin(ctx, ctx.params.name!);
    const user = knownUser(ctx.params.name!);
    if (manager.view(user.login).phase === 'stopped') throw new HttpError(404, `${user.login} has no cluster`);
    await manager.stop(user.login, { actor: actor.login, reason: actor.login === user.login ? 'stopped by the user' : `stopped by ${actor.login}` });
    ctx.status = 204;
  });
}
