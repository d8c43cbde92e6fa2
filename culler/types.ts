/**
 * The culler's narrow view of the hub: the clusters it knows, the stop path, the proxy,
 * and the backend's orphans. The hub wires these; the culler never imports the hub.
 */
import type { Config } from '../config/schema.ts';
import type { Logger } from '../shared/log.ts';
import type { Proxy } from '../proxy/types.ts';

/** The `culler` section of the configuration. */
export type CullerConfig = Config['culler'];

/** One cluster the hub knows, as the culler needs to see it. */
export interface CullCandidate {
  user: string;
  phase: 'starting' | 'running' | 'stopping';
  /** ISO 8601. Max age counts from here. */
  createdAt: string;
  /** ISO 8601, or null while the launch is pending. */
  readyAt: string | null;
  /** Jupyter's base target, e.g. `http://127.0.0.1:PORT` (the proxy target), or null. */
  url: string | null;
  jupyterToken: string;
  /** The prefix Jupyter serves under: `/user/{login}/`. */
  baseUrl: string;
  /** The proxy route of this cluster: `/user/{login}`. */
  routePath: string;
}

/** A backend cluster the hub has no record of. */
export interface Orphan {
  user: string;
  /** ISO 8601, when the backend knows it; otherwise the culler ages it from first sight. */
  createdAt?: string;
}

/** What the culler needs from the hub. */
export interface CullerDeps {
  /** Every cluster the hub has a record of, in any phase (read after the proxy's routes). */
  clusters(): CullCandidate[];
  /** The same stop path as a user's Stop: route, then namespace/processes; records the event with `reason`. */
  stop(user: string, reason: string): Promise<void>;
  /** configurable-http-proxy's REST API; the culler only reads it (`getRoutes(inactiveSince)`). */
  proxy: Pick<Proxy, 'getRoutes'>;
  /** Backend clusters the hub has no record of (`backend.list()` minus the known ones). */
  orphans(): Promise<Orphan[]>;
  /** Remove one orphan's backend resources. */
  removeOrphan(user: string): Promise<void>;
  /**
   * The latest activity this sweep saw for a cluster (proxy route or Jupyter), so the
   * store's `last_activity` follows the culler's evidence. Called in dry runs too.
   */
  recordActivity?(user: string, lastActivity: Date): void;
  log: Logger;
  /** The clock (tests move it). */
  now?: () => Date;
  /** Give up on one Jupyter request after this long (default 5 s). */
  activityTimeoutMs?: number;
}

/** Jupyter's own view of a cluster's activity, or why it could not be asked. */
export type JupyterActivity =
  | { lastActivity: Date; kernels: number; busyKernels: number; connections: number }
  | { unreachable: string };

/**
 * The proxy's view of one route: present with its last activity and whether
 * `GET /api/routes?inactive_since=` listed it; `missing` (no route);
 * `unknown` (the proxy API failed this sweep).
 */
export type RouteEvidence =
  | { lastActivity: Date | null; inactive: boolean }
  | 'missing'
  | 'unknown';

/** What the policy decided for one cluster. */
export interface Decision {
  action: 'keep' | 'cull';
  /** Words for the log, the admin page and (for a cull) the user: `idle 61 minutes`, `max age`. */
  reason: string;
  /** How long both views agree the cluster has been idle, when known. */
  idleSeconds: number | null;
  /** The earliest moment it becomes cullable if nothing changes (null: not foreseeable). */
  cullAt: Date | null;
  /** Which evidence decided: both views, one of them, or age. */
  evidence: 'proxy+jupyter' | 'proxy' | 'jupyter' | 'age' | 'phase' | 'none';
}

/** One cluster's line of a sweep report. */
export interface ClusterReport {
  user: string;
  action: 'keep' | 'cull';
  reason: string;
  idleSeconds: number | null;
  /** ISO 8601 or null. */
  cullAt: string | null;
  /** The latest activity the proxy or Jupyter reported (ISO 8601), or null when neither did. */
  lastActivity: string | null;
  evidence: Decision['evidence'];
  /** Why Jupyter could not be asked, when it could not. */
  jupyterUnreachable?: string;
  /** True once the stop path finished (false in a dry run or when the stop failed). */
  stopped: boolean;
}

/** A failure during a sweep; the sweep went on without that step. */
export interface SweepError {
  user?: string;
  step: 'routes' | 'activity' | 'stop' | 'orphans' | 'removeOrphan' | 'clusters';
  message: string;
}

/** What one sweep saw and did. */
export interface SweepReport {
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dryRun: boolean;
  clusters: ClusterReport[];
  /** Users whose cluster was (or, in a dry run, would be) culled. */
  culled: string[];
  /** Orphans removed (or that would be, in a dry run). */
  orphansRemoved: string[];
  /** Orphans still within `orphanGraceSeconds`, with the time they become removable. */
  orphansWaiting: Array<{ user: string; removeAt: string }>;
  errors: SweepError[];
}
