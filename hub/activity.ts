/**
 * The store's `last_activity` follows what the culler sees: each sweep (and each route
 * repair, which reads the proxy's table anyway) records the latest activity of a cluster
 * on its row and on its user, never moving either backwards.
 */
import type { RouteInfo } from '../proxy/types.ts';
import { normalizeRoutePath } from '../proxy/route-sync.ts';
import type { Store } from './store/types.ts';

/** Record that `user`'s cluster was active at `at` (ignored when older than what is stored). */
export function recordActivity(store: Store, user: string, at: Date): void {
  const time = at.getTime();
  if (!Number.isFinite(time)) return;
  const iso = at.toISOString();
  const row = store.getCluster(user);
  // Only a running cluster's activity is news; a starting one has no route yet, a stopping one is going.
  if (row?.phase === 'running' && isNewer(time, row.lastActivity)) store.updateCluster(user, { lastActivity: iso });
  // A student working in their cluster is active even if the hub's pages never saw them.
  const account = store.getUser(user);
  if (account && isNewer(time, account.lastSeen)) store.touchUser(user, at);
}

/** Record the proxy's `last_activity` of every known cluster's route (`pathOf`: a user's route key). */
export function recordRouteActivity(store: Store, routes: Record<string, RouteInfo>, pathOf: (user: string) => string, now = new Date()): void {
  const byPath = new Map(Object.entries(routes).map(([path, info]) => [normalizeRoutePath(path), info]));
  for (const cluster of store.listClusters()) {
    const at = byPath.get(normalizeRoutePath(pathOf(cluster.user)))?.last_activity;
    const time = at ? Date.parse(at) : NaN;
    // A proxy clock ahead of ours means "just now", never the future.
    if (Number.isFinite(time)) recordActivity(store, cluster.user, new Date(Math.min(time, now.getTime())));
  }
}

/** A user's last activity: the later of the hub's sight of them and their cluster's. */
export function userLastActivity(lastSeen: string | null, clusterActivity: string | null | undefined): string | null {
  if (!clusterActivity) return lastSeen;
  if (!lastSeen) return clusterActivity;
  return Date.parse(clusterActivity) > Date.parse(lastSeen) ? clusterActivity : lastSeen;
}

function isNewer(time: number, stored: string | null): boolean {
  const before = stored ? Date.parse(stored) : NaN;
  return !Number.isFinite(before) || time > before;
}
