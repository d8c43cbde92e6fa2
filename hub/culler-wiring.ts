/** Wires the culler to the hub: its candidates, the one stop path, and orphans from the backend. */
import type { Config } from '../config/schema.ts';
import { Culler } from '../culler/job.ts';
import type { CullCandidate } from '../culler/types.ts';
import { childLogger, type Logger } from '../shared/log.ts';
import { userUrl } from '../spawner/cluster-view.ts';
import type { SpawnManager } from '../spawner/manager.ts';
import type { Proxy } from '../proxy/types.ts';
import type { Backend } from '../spawner/types.ts';
import type { CullerControl } from './deps.ts';
import type { HubMetrics } from './metrics.ts';
import type { Store } from './store/types.ts';

export interface CullingDeps {
  config: Config;
  store: Store;
  manager: SpawnManager;
  proxy: Proxy;
  backend: Backend;
  log: Logger;
  metrics: HubMetrics;
}

/**
 * The hub's culler (undefined when `culler.enabled` is false). `start()` schedules it: the
 * hub calls it once its records are reconciled and the routes are back, so no sweep judges
 * a half-started hub (no proxy yet, records not yet adopted).
 */
export function createCuller(deps: CullingDeps): (CullerControl & { start(): void; stop(): Promise<void> }) | undefined {
  const { config, store, manager, backend } = deps;
  if (!config.culler.enabled) return undefined;
  const culler = new Culler({
    clusters: () => store.listClusters().map((c): CullCandidate => ({
      user: c.user, phase: c.phase, createdAt: c.createdAt, readyAt: c.readyAt, url: c.url,
      jupyterToken: c.jupyterToken, baseUrl: userUrl(c.user), routePath: manager.routes.path(c.user),
    })),
    stop: async (user, reason) => {
      await manager.stop(user, { actor: 'culler', reason, kind: 'culled' });
      deps.metrics.culled(1);
    },
    proxy: deps.proxy,
    orphans: async () => {
      const known = new Set([...store.listClusters().map((c) => c.user), ...manager.pendingUsers()]);
      return (await backend.list()).filter((l) => !known.has(l.user)).map((l) => ({ user: l.user, createdAt: l.createdAt }));
    },
    removeOrphan: (user) => backend.stop(user),
    recordActivity: (user, at) => store.recordActivity(user, at),
    log: childLogger(deps.log, { component: 'culler' }),
  }, config.culler);
  return {
    // `culler.dryRun` means "change nothing": a sweep asked for by an admin is a dry run too.
    sweep: (options) => culler.sweep({ dryRun: config.culler.dryRun || options?.dryRun }),
    // The last sweep's view; before the first sweep, a dry run supplies one.
    async outlook() {
      const report = culler.lastReport() ?? await culler.sweep({ dryRun: true });
      return new Map(report.clusters.map((c) => {
        const at = c.cullAt ? culler.sweepAtOrAfter(new Date(c.cullAt)) : null;
        return [c.user, { idleSeconds: c.idleSeconds, cullAt: at ? at.toISOString() : c.cullAt }];
      }));
    },
    start: () => culler.start(),
    stop: () => culler.stop(),
  };
}
