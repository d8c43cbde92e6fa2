/**
 * Keeps `last_activity` true, the way JupyterHub's `last_activity_interval` does: on a timer,
 * each running cluster's latest activity — proxy traffic on its route, Jupyter's own last
 * activity, and "now" while a kernel is busy — is written to the cluster and its user. The
 * REST API (and so jupyterhub-idle-culler) and the console read it from the store, so it
 * works whether the hub's own culler runs or not.
 */
import { fetchActivity } from '../culler/activity.ts';
import { forEachLimit } from '../shared/limit.ts';
import type { Logger } from '../shared/log.ts';
import { userUrl } from '../spawner/cluster-view.ts';
import type { Proxy, RouteInfo } from '../proxy/types.ts';
import type { Store } from './store/types.ts';

export interface ActivityDeps {
  store: Store;
  proxy: Proxy;
  log: Logger;
  /** The proxy path of a user's cluster (it depends on `hub.userSubdomains`). */
  routePath: (user: string) => string;
  now?: () => Date;
}

/** Jupyter is asked about this many clusters at once. */
const CONCURRENCY = 10;

/** Reads every running cluster's activity once and records what moved forward. */
export async function recordActivity(deps: ActivityDeps): Promise<void> {
  const now = deps.now ?? (() => new Date());
  let routes: Record<string, RouteInfo> = {};
  try {
    routes = await deps.proxy.getRoutes();
  } catch (err) {
    deps.log.warn({ err }, 'activity: the proxy did not list its routes; asking Jupyter only');
  }
  const running = deps.store.listClusters().filter((c) => c.phase === 'running' && c.url);
  await forEachLimit(running, CONCURRENCY, async (cluster) => {
    const seen: number[] = [];
    const routeActivity = routes[deps.routePath(cluster.user)]?.last_activity;
    if (routeActivity) seen.push(Date.parse(routeActivity));
    const jupyter = await fetchActivity({ url: cluster.url, baseUrl: userUrl(cluster.user), jupyterToken: cluster.jupyterToken });
    if (!('unreachable' in jupyter)) {
      seen.push(jupyter.lastActivity.getTime());
      // A long computation sends nothing, and is the opposite of idle.
      if (jupyter.busyKernels > 0) seen.push(now().getTime());
    }
    // A clock ahead of ours is "now", never the future.
    const latest = Math.min(Math.max(...seen.filter(Number.isFinite)), now().getTime());
    if (Number.isFinite(latest)) deps.store.recordActivity(cluster.user, new Date(latest));
  }, (cluster, err) => deps.log.warn({ user: cluster.user, err }, 'activity: could not record'));
}

/** Records activity every `intervalSeconds` (a slow round is never overlapped); returns the stopper. */
export function trackActivity(deps: ActivityDeps, intervalSeconds: number): () => Promise<void> {
  let round: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (round) return;
    round = recordActivity(deps)
      .catch((err) => deps.log.error({ err }, 'activity round failed'))
      .finally(() => { round = null; });
  }, intervalSeconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await round;
  };
}
