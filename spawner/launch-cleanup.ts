/**
 * Removing what a failed launch left: its route, its backend objects, its record. When the
 * backend cannot be reached (an API server outage), the record stays `stopping` and the
 * removal is retried with backoff until the backend answers, not left to the orphan sweep.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../shared/log.ts';
import type { RouteScheme } from '../proxy/routes.ts';
import type { Proxy } from '../proxy/types.ts';
import type { ClusterRecords } from './records.ts';
import type { Backend } from './types.ts';

/** What the removal needs from the manager. */
export interface CleanupContext {
  backend: Backend;
  proxy: Proxy;
  records: ClusterRecords;
  routes: RouteScheme;
  log: Logger;
  /** Aborts when the hub closes: retries end, the record stays `stopping` for the next start. */
  closed: AbortSignal;
  /** The removal goes on in the background (the manager counts the user as stopping until it ends). */
  retrying(user: string, removal: Promise<void>): void;
}

/** Remove what `user`'s failed launch left; when the backend does not answer, hand `retrying` the retries. */
export async function removeFailedLaunch(context: CleanupContext, user: string): Promise<void> {
  await context.proxy.deleteRoute(context.routes.path(user)).catch((err) => context.log.warn({ user, err }, 'route cleanup failed'));
  try {
    await context.backend.stop(user);
    context.records.deleteCluster(user);
  } catch (err) {
    context.log.error({ user, err }, 'backend cleanup failed; retrying until the backend answers');
    context.records.updateCluster(user, { phase: 'stopping' });
    context.retrying(user, retryRemoval(context, user));
  }
}

/** Stop the backend's objects with backoff (at most 5 s apart) until it answers; never rejects. */
async function retryRemoval(context: CleanupContext, user: string): Promise<void> {
  try {
    for (let attempt = 0; ; attempt++) {
      await delay(Math.min(5000, 500 * 2 ** Math.min(attempt, 10)), undefined, { signal: context.closed });
      try {
        await context.backend.stop(user);
        break;
      } catch (err) {
        context.log.warn({ user, attempt, err }, 'backend cleanup failed again');
      }
    }
    context.records.deleteCluster(user);
    context.records.addEvent({ actor: 'hub', user, kind: 'cleanup', detail: { reason: 'what the failed launch left was removed once the backend answered again' } });
  } catch {
    // The hub is closing: the record stays `stopping` and the next start finishes the removal.
  }
}
