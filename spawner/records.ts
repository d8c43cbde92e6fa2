/** How the manager remembers clusters: the rows of the hub's store it reads and writes. */

/** A user's cluster as the manager remembers it: one row of the hub's store. */
export interface ClusterRow {
  user: string;
  /** The backend's kind (`local`, `kubernetes`). */
  backend: string;
  phase: 'starting' | 'running' | 'stopping';
  workers: number;
  /** Jupyter's token for this cluster (a random secret; the database file is 0600). */
  jupyterToken: string;
  /** Proxy target once ready. */
  url: string | null;
  createdAt: string;
  readyAt: string | null;
  lastActivity: string | null;
}

/** How the manager remembers clusters (the hub's Store satisfies it). */
export interface ClusterRecords {
  getCluster(user: string): ClusterRow | undefined;
  putCluster(row: ClusterRow): void;
  updateCluster(user: string, patch: Partial<Omit<ClusterRow, 'user'>>): void;
  listClusters(): ClusterRow[];
  /** How many clusters are in `phase`: a count, not a listing (the active-clusters gauge reads it after every launch and stop). */
  countClusters(phase: ClusterRow['phase']): number;
  deleteCluster(user: string): void;
  /** Runs `fn`'s writes as one commit (a launch's record and its event land together); nested calls join the outer one. */
  atomically<T>(fn: () => T): T;
  addEvent(event: { actor: string; user: string; kind: string; detail?: Record<string, unknown> }): unknown;
}
