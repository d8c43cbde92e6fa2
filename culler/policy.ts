/**
 * The culler's decision for one cluster, as a pure function of what the proxy and Jupyter
 * said, the clock and the configuration. No I/O here: `job.ts` gathers the evidence.
 *
 * Rules, in order:
 * 1. A pending launch (`starting`) or a cluster being stopped is never culled.
 * 2. Max age culls regardless of activity.
 * 3. Idle means both views agree: the proxy lists the route as inactive AND Jupyter's own
 *    last activity is as old, with no busy kernel. Idle time is the younger of the two.
 * 4. Jupyter unreachable (a pod with no server): the proxy's view decides.
 * 5. No route yet (route sync puts it back within seconds): Jupyter's view decides; with
 *    neither a route nor Jupyter there is no evidence of idleness, so the cluster is kept
 *    (max age still applies, and the next sweep has the route back).
 * Timestamps in the future (clock skew) count as now, never as negative idle time, and a
 * cluster is never idle for longer than it has been up (readyAt, else createdAt).
 */
import type { CullCandidate, CullerConfig, Decision, JupyterActivity, RouteEvidence } from './types.ts';

/** Everything one decision depends on. */
export interface PolicyInput {
  cluster: Pick<CullCandidate, 'phase' | 'createdAt' | 'readyAt'>;
  route: RouteEvidence;
  /** Jupyter's activity; null when it was not asked (see `needsJupyter`). */
  jupyter: JupyterActivity | null;
  now: Date;
  config: Pick<CullerConfig, 'idleTimeoutSeconds' | 'maxAgeSeconds'>;
}

/**
 * Whether the decision can depend on Jupyter's view. When the proxy already shows
 * traffic (or the cluster is pending, or past max age) the sweep need not ask Jupyter.
 */
export function needsJupyter(input: Omit<PolicyInput, 'jupyter'>): boolean {
  const { cluster, route, now, config } = input;
  if (cluster.phase !== 'running') return false;
  const ageLimit = maxAgeAt(cluster.createdAt, now, config);
  if (ageLimit !== null && now.getTime() >= ageLimit) return false;
  if (route === 'unknown') return false;
  return route === 'missing' || route.inactive;
}

/** Keep or cull one cluster, with the reason and when it will be culled if nothing changes. */
export function decide(input: PolicyInput): Decision {
  const { cluster, route, config } = input;
  const now = input.now.getTime();
  const timeoutMs = config.idleTimeoutSeconds * 1000;

  if (cluster.phase !== 'running') {
    return { action: 'keep', reason: cluster.phase === 'starting' ? 'launch pending' : 'stopping', idleSeconds: null, cullAt: null, evidence: 'phase' };
  }
  const ageLimit = maxAgeAt(cluster.createdAt, input.now, config);
  if (ageLimit !== null && now >= ageLimit) {
    return { action: 'cull', reason: 'max age', idleSeconds: null, cullAt: new Date(ageLimit), evidence: 'age' };
  }
  /** The earlier of an idle deadline and the max-age deadline. */
  const cullAt = (idleDeadline: number | null): Date | null => {
    const times = [idleDeadline, ageLimit].filter((t): t is number => t !== null);
    return times.length ? new Date(Math.min(...times)) : null;
  };
  const keep = (reason: string, evidence: Decision['evidence'], idleMs: number | null, deadline: number | null): Decision =>
    ({ action: 'keep', reason, idleSeconds: idleMs === null ? null : seconds(idleMs), cullAt: cullAt(deadline), evidence });

  if (route === 'unknown') return keep('proxy API unavailable', 'none', null, null);

  const upSince = seenAt(cluster.readyAt ?? cluster.createdAt, now);
  const proxyLast = route === 'missing' ? null : Math.max(route.lastActivity ? seenAt(route.lastActivity, now) : upSince, upSince);
  if (route !== 'missing' && !route.inactive) {
    return keep(`proxy traffic ${formatDuration(seconds(now - proxyLast!))} ago`, 'proxy', now - proxyLast!, proxyLast! + timeoutMs);
  }

  const jupyter = input.jupyter ?? { unreachable: 'not asked' };
  if ('unreachable' in jupyter) {
    if (proxyLast === null) return keep('no route and Jupyter unreachable: no evidence of idleness', 'none', null, null);
    return judge(now - proxyLast, 'proxy');
  }
  if (jupyter.busyKernels > 0) {
    const kernels = jupyter.busyKernels === 1 ? 'a kernel is busy' : `${jupyter.busyKernels} kernels are busy`;
    return keep(kernels, 'jupyter', 0, null);
  }
  const jupyterLast = Math.max(seenAt(jupyter.lastActivity, now), upSince);
  const last = proxyLast === null ? jupyterLast : Math.max(proxyLast, jupyterLast);
  return judge(now - last, proxyLast === null ? 'jupyter' : 'proxy+jupyter');

  function judge(idleMs: number, evidence: Decision['evidence']): Decision {
    if (idleMs >= timeoutMs) {
      return { action: 'cull', reason: `idle ${formatDuration(seconds(idleMs))}`, idleSeconds: seconds(idleMs), cullAt: cullAt(now - idleMs + timeoutMs), evidence };
    }
    return keep(`idle ${formatDuration(seconds(idleMs))} of ${formatDuration(config.idleTimeoutSeconds)}`, evidence, idleMs, now - idleMs + timeoutMs);
  }
}

/** `idle 61 minutes` style: whole minutes from a minute on, seconds below. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return s === 1 ? '1 second' : `${s} seconds`;
  const m = Math.floor(s / 60);
  return m === 1 ? '1 minute' : `${m} minutes`;
}

/** When max age is reached, or null when there is no max age. */
function maxAgeAt(createdAt: string, now: Date, config: PolicyInput['config']): number | null {
  if (!(config.maxAgeSeconds > 0)) return null;
  return seenAt(createdAt, now.getTime()) + config.maxAgeSeconds * 1000;
}

/** A timestamp as milliseconds, clamped to now: a clock ahead of ours means "just now". */
function seenAt(time: Date | string, now: number): number {
  const ms = typeof time === 'string' ? Date.parse(time) : time.getTime();
  // An unparsable time is no evidence of age or idleness: treat it as now.
  return Number.isFinite(ms) ? Math.min(ms, now) : now;
}

/** Whole seconds of a duration in milliseconds. */
function seconds(ms: number): number {
  return Math.floor(Math.max(0, ms) / 1000);
}
