/**
 * Makes the hub's records, the backend and the proxy agree — at start (a restarted hub
 * finds every running cluster again) and on a timer (a cluster that died is forgotten).
 *
 * Level-triggered from fresh state: one listing, then every decision is taken at once
 * against the records as they are now. A user the manager launched or stopped after the
 * listing began, or whose launch or stop ended since, is left alone (a generation check),
 * so a pass never brings back a cluster that a stop removed meanwhile, nor undoes a stop.
 */
import type { Logger } from '../shared/log.ts';
import type { ClusterRecords } from './records.ts';
import type { Backend, ClusterListing } from './types.ts';

/** A cluster to remove through the manager's stop path, and why. */
export interface Removal {
  user: string;
  /** Event kind: `launch-failed` (abandoned launch), `lost` (died), `cleanup` (a stop to finish, a broken namespace). */
  kind: 'launch-failed' | 'lost' | 'cleanup';
  reason: string;
  /** The generation the decision was taken at: a launch or stop of the user since then cancels it. */
  since: number;
}

export interface ReconcileReport {
  /** Running clusters the records lacked (a wiped database), taken back. */
  adopted: string[];
  /** Running clusters of the records the backend confirmed. */
  kept: string[];
  /** Records of clusters that no longer run: removed. */
  forgotten: string[];
  /** Launches cut short by a hub restart: removed so the user can launch again. */
  abandoned: string[];
  /** Stops that never finished and namespaces the hub cannot use (half-created, unreadable). */
  cleaned: string[];
  /** Every removal decided, in the order above; run them with {@link removeClusters}. */
  removals: Removal[];
}

export interface ReconcileDeps {
  backend: Backend;
  records: ClusterRecords;
  log: Logger;
  /** Users the manager is launching or stopping in this process right now: theirs are not touched. */
  busy: () => Iterable<string>;
  /** Grows with every launch and stop the manager begins. */
  generation: () => number;
  /** True when a launch or stop of `user` began or ended after generation `since`. */
  changedSince: (user: string, since: number) => boolean;
  /** Known users: an unknown running cluster belongs to nobody and is left to the orphan sweep. */
  knownUser: (login: string) => boolean;
}

/**
 * One pass: decide from one listing and apply the record changes at once (adoptions, new
 * targets, `stopping` for what must go, so no route is wanted for it any more). The
 * removals themselves are returned: the caller restores routes first and removes after.
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: [], kept: [], forgotten: [], abandoned: [], cleaned: [], removals: [] };
  const since = deps.generation();
  const listings = new Map((await deps.backend.list()).map((l) => [l.user, l]));
  // From here on, synchronous: nothing the manager does can interleave with the decisions.
  const busy = new Set(deps.busy());
  const untouchable = (user: string) => busy.has(user) || deps.changedSince(user, since);
  const remove = (user: string, kind: Removal['kind'], reason: string, into: string[]) => {
    if (deps.records.getCluster(user)) deps.records.updateCluster(user, { phase: 'stopping' });
    report.removals.push({ user, kind, reason, since });
    into.push(user);
  };

  for (const record of deps.records.listClusters()) {
    const { user } = record;
    if (untouchable(user)) continue;
    const listing = listings.get(user);
    listings.delete(user);
    if (record.phase === 'stopping') {
      remove(user, 'cleanup', 'a stop that had not finished was completed', report.cleaned);
    } else if (record.phase === 'starting') {
      // No launch runs for it in this process: the one that owned it died with a previous hub.
      remove(user, 'launch-failed', 'the hub restarted during the launch; launch again', report.abandoned);
    } else if (!listing || listing.state === 'stopped' || listing.state === 'failed') {
      remove(user, 'lost', listing?.reason ?? 'the cluster is gone', report.forgotten);
    } else {
      if (listing.url && listing.url !== record.url) deps.records.updateCluster(user, { url: listing.url });
      report.kept.push(user);
    }
  }

  for (const listing of listings.values()) {
    const { user } = listing;
    if (untouchable(user) || deps.records.getCluster(user)) continue;
    if (listing.state === 'failed') {
      // Half-created or unreadable: nobody can use it, and it must not wait for the orphan grace.
      remove(user, 'cleanup', listing.reason ?? 'the cluster is broken', report.cleaned);
    } else if (adoptable(listing) && deps.knownUser(user)) {
      const now = new Date().toISOString();
      deps.records.putCluster({
        user, backend: deps.backend.kind, phase: 'running', workers: listing.workers ?? 0,
        jupyterToken: listing.jupyterToken!, url: listing.url!, createdAt: listing.createdAt ?? now, readyAt: now, lastActivity: now,
      });
      deps.records.addEvent({ actor: 'hub', user, kind: 'adopted', detail: {} });
      report.adopted.push(user);
    }
  }
  const { removals, kept, ...changes } = report;
  if (Object.values(changes).some((users) => users.length)) deps.log.info({ ...changes }, 'reconciled clusters');
  return report;
}

function adoptable(listing: ClusterListing): boolean {
  return listing.state === 'running' && Boolean(listing.url) && Boolean(listing.jupyterToken);
}

/**
 * Runs removals through `stop` (the manager's one stop path), at most `limit` at once; a
 * failure is logged and the rest go on (the next pass tries again: the record stays `stopping`).
 */
export async function removeClusters(
  removals: Removal[],
  stop: (removal: Removal) => Promise<void>,
  options: { limit: number; log: Logger },
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < removals.length) {
      const removal = removals[next++]!;
      await stop(removal).catch((err) => options.log.warn({ user: removal.user, kind: removal.kind, err }, 'removing a cluster failed; the next repair tries again'));
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, options.limit), removals.length) }, lane));
}
