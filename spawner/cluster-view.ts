/** What the hub tells a client about a user's cluster: where its Jupyter lives, and its phase. */
import type { Launch } from './launch-progress.ts';
import type { ClusterRow } from './records.ts';

/** Jupyter's base URL (the path it serves under, on whichever host). */
export function userUrl(user: string): string {
  return `/user/${user}/`;
}

/** What the hub can tell a client about one user's cluster right now. */
export interface ClusterView {
  phase: 'stopped' | 'queued' | 'starting' | 'running' | 'stopping';
  workers: number;
  /** 1-based position in the launch line while queued. */
  queuePosition?: number;
  progress?: number;
  url?: string;
  createdAt?: string;
  readyAt?: string | null;
}

/** The view from what the manager knows: a launch in flight wins, then a stop, then the row. */
export function clusterView(state: {
  launch: Launch | undefined;
  /** 1-based place in line of the launch, 0 once it has a slot. */
  position: number;
  stopping: boolean;
  record: ClusterRow | undefined;
  url: string;
}): ClusterView {
  const { launch, position, record } = state;
  if (launch) {
    return { phase: position > 0 ? 'queued' : 'starting', workers: launch.workers, ...(position > 0 ? { queuePosition: position } : {}), createdAt: launch.startedAt.toISOString() };
  }
  if (state.stopping) return { phase: 'stopping', workers: record?.workers ?? 0 };
  if (!record) return { phase: 'stopped', workers: 0 };
  return { phase: record.phase, workers: record.workers, url: state.url, createdAt: record.createdAt, readyAt: record.readyAt };
}
