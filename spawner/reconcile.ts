/**
 * Makes the hub's records, the backend and the proxy agree — at start (a restarted hub
 * finds every running cluster again) and on a timer (a cluster that died is forgotten).
 */
import type { Logger } from '../shared/log.ts';
import type { ClusterRecords } from './manager.ts';
import { pathRoutes, type RouteScheme } from '../proxy/routes.ts';
import type { Proxy } from '../proxy/types.ts';
import type { Backend } from './types.ts';

export interface ReconcileReport {
  adopted: string[];
  forgotten: string[];
  /** Launches cut short by a hub restart: cleaned up so the user can launch again. */
  abandoned: string[];
}

export interface ReconcileDeps {
  backend: Backend;
  proxy: Proxy;
  records: ClusterRecords;
  log: Logger;
  /** Users with a launch in flight in this process: theirs are not touched. */
  pending: () => string[];
  /** Known users: an unknown cluster belongs to nobody and is left to the orphan sweep. */
  knownUser: (login: string) => boolean;
  /** How user routes are keyed (default: by path). */
  routes?: RouteScheme;
}

/** One pass: adopt running clusters, forget dead ones, clean up abandoned launches. */
export async function reconcile(deps: ReconcileDeps, options: { startup: boolean }): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: [], forgotten: [], abandoned: [] };
  const listings = new Map((await deps.backend.list()).map((l) => [l.user, l]));
  const pending = new Set(deps.pending());

  for (const record of deps.records.listClusters()) {
    if (pending.has(record.user) || record.phase === 'stopping') continue;
    const listing = listings.get(record.user);
    if (record.phase === 'starting' && options.startup) {
      // The launch that owned this died with the previous hub process.
      await deps.backend.stop(record.user).catch((err) => deps.log.warn({ user: record.user, err }, 'cleanup of an abandoned launch failed'));
      deps.records.deleteCluster(record.user);
      deps.records.addEvent({ actor: 'hub', user: record.user, kind: 'launch-failed', detail: { reason: 'the hub restarted during the launch; launch again' } });
      report.abandoned.push(record.user);
      continue;
    }
    if (record.phase !== 'running') continue;
    if (!listing || listing.state === 'stopped' || listing.state === 'failed') {
      await deps.proxy.deleteRoute((deps.routes ?? pathRoutes).path(record.user)).catch(() => {});
      if (listing) await deps.backend.stop(record.user).catch(() => {});
      deps.records.deleteCluster(record.user);
      const reason = listing?.reason ?? 'the cluster is gone';
      deps.records.addEvent({ actor: 'hub', user: record.user, kind: 'lost', detail: { reason } });
      deps.log.warn({ user: record.user, reason }, 'forgot a cluster that no longer runs');
      report.forgotten.push(record.user);
    } else if (listing.url && listing.url !== record.url) {
      deps.records.updateCluster(record.user, { url: listing.url });
    }
  }

  // Running clusters the records lost (a wiped database) come back if their owner is known.
  for (const listing of listings.values()) {
    if (deps.records.getCluster(listing.user) || pending.has(listing.user)) continue;
    if (listing.state !== 'running' || !listing.url || !listing.jupyterToken || !deps.knownUser(listing.user)) continue;
    const now = new Date().toISOString();
    deps.records.putCluster({
      user: listing.user, backend: deps.backend.kind, phase: 'running', workers: listing.workers ?? 0,
      jupyterToken: listing.jupyterToken, url: listing.url, createdAt: listing.createdAt ?? now, readyAt: now, lastActivity: now,
    });
    deps.records.addEvent({ actor: 'hub', user: listing.user, kind: 'adopted', detail: {} });
    report.adopted.push(listing.user);
  }
  if (report.adopted.length || report.forgotten.length || report.abandoned.length) deps.log.info({ ...report }, 'reconciled clusters');
  return report;
}
