/**
 * The contract between the spawn manager and the places clusters run.
 * Backends implement `Backend`; they never import the proxy or the hub.
 */

/** JupyterHub `poll` semantics: what the backend sees right now. */
export type ClusterState = 'running' | 'starting' | 'stopped' | 'failed';

/**
 * One step of a launch, the shape JupyterHub streams at `.../progress`.
 * The last event of a successful start has `ready: true` and `url` (the proxy target).
 */
export interface ProgressEvent {
  progress: number;
  message: string;
  ready?: boolean;
  failed?: boolean;
  /** Where the proxy should send `/user/{name}/` (only on the ready event). */
  url?: string;
}

/** What a launch asks of a backend. */
export interface StartOptions {
  /**
   * Number of worker replicas (each runs a Dask worker, a Spark worker and IPython engines),
   * within `spawn.maxWorkers` (spawner/worker-count.ts: the manager and each backend check it).
   */
  workers: number;
  /** Random per-cluster secret; Jupyter requires it. Handed only to the owner and admins. */
  jupyterToken: string;
  /** The URL prefix Jupyter serves under, always `/user/{login}/`. */
  baseUrl: string;
  /** Aborted when the launch times out or is cancelled: the backend stops where it is. */
  signal?: AbortSignal;
}

/** What a backend knows about one user's cluster. */
export interface ClusterStatus {
  state: ClusterState;
  /** Current worker replicas (desired). */
  workers?: number;
  /** Workers that are up, when the backend can tell. */
  readyWorkers?: number;
  /** Why the cluster is `failed`, in words a student understands. */
  reason?: string;
}

/** A cluster found by `Backend.list()`, used to reconcile after a hub restart. */
export interface ClusterListing extends ClusterStatus {
  /** The GitHub login this cluster belongs to. */
  user: string;
  /** The proxy target, when the cluster is running. */
  url?: string;
  /** Set when the backend can recover the Jupyter token (a Secret, a state file). */
  jupyterToken?: string;
  /** When the backend created it (ISO 8601). */
  createdAt?: string;
}

export interface StopOptions {
  /** Also delete the user's workspace (a reset). */
  removeWorkspace?: boolean;
}

/** A place where clusters run: local processes or Kubernetes namespaces. */
export interface Backend {
  /** `local` or `kubernetes`. */
  readonly kind: string;
  /** Start a cluster; yields progress and ends with a `ready` event, or throws with the reason. */
  start(user: string, options: StartOptions): AsyncIterable<ProgressEvent>;
  /** Stop and remove everything the cluster owns. Idempotent. */
  stop(user: string, options?: StopOptions): Promise<void>;
  status(user: string): Promise<ClusterStatus>;
  /** Change the number of workers of a running cluster (spawner/worker-count.ts's rule, 422). */
  scale(user: string, workers: number): Promise<void>;
  /** Every cluster this backend manages, whether or not the hub knows it. */
  list(): Promise<ClusterListing[]>;
  /**
   * Dashboards of a running cluster, label → path under the user's Jupyter base URL
   * (reached through Jupyter's authenticated proxy, e.g. `dask/status`, `proxy/8080/`).
   */
  links?(user: string): Promise<Record<string, string>>;
  /** Release watches, timers and child handles (the clusters keep running). */
  close?(): Promise<void>;
  /** What an instructor must know about this backend (e.g. students are not isolated); logged at start, shown on the admin page. */
  warnings?(): string[];
}

/**
 * Why a cluster operation failed, for metrics and programs (the message is for people):
 * `invalid` a bad request; `conflict` the cluster is in another phase; `not-found` no such
 * cluster; `cancelled` stopped, or the hub shut down, during the launch; `timeout` not ready
 * in time; `refused` the platform refused an object (quota, admission); `unavailable` the
 * platform cannot run it now (its API failed, no room, no image); `failed` the cluster
 * itself failed (an engine, no target).
 */
export type ClusterErrorReason = 'invalid' | 'conflict' | 'not-found' | 'cancelled' | 'timeout' | 'refused' | 'unavailable' | 'failed';

/** Thrown by backends and the manager for failures a user should see verbatim. */
export class ClusterError extends Error {
  readonly status: number;
  readonly reason: ClusterErrorReason;
  constructor(message: string, status = 500, reason: ClusterErrorReason = reasonOfStatus(status)) {
    super(message);
    this.name = 'ClusterError';
    this.status = status;
    this.reason = reason;
  }
}

/** The reason an HTTP status implies, when the thrower names none. */
function reasonOfStatus(status: number): ClusterErrorReason {
  if (status === 400 || status === 422) return 'invalid';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status === 503) return 'unavailable';
  if (status === 504) return 'timeout';
  return 'failed';
}
