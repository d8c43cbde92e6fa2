/** The counters the manager feeds (the hub exports them; hub/metrics.ts implements them). */
import type { ClusterRecords } from './records.ts';
import type { ClusterErrorReason } from './types.ts';

/** Counters the hub exports; the default does nothing (no null checks anywhere). */
export interface ManagerMetrics {
  launchStarted(): void;
  launchSucceeded(seconds: number): void;
  /** A launch failed; `reason` is the ClusterError's (`failed` for any other error). */
  launchFailed(seconds: number, reason: ClusterErrorReason): void;
  activeClusters(count: number): void;
}

/** Counts nothing. */
export const noMetrics: ManagerMetrics = { launchStarted() {}, launchSucceeded() {}, launchFailed() {}, activeClusters() {} };

/** How many clusters the records say are running (the active-clusters gauge): an indexed count, not a read of every row. */
export function runningCount(records: Pick<ClusterRecords, 'countClusters'>): number {
  return records.countClusters('running');
}
