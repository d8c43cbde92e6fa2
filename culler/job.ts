/**
 * The culler job: on a node-cron schedule, stop clusters that are idle (proxy and Jupyter
 * agree) or past max age, and remove backend orphans past their grace period. Decisions
 * come from `policy.ts`. It reads routes and never changes them: stopping goes through the
 * hub's stop path, and route sync is the one owner of the proxy's table.
 *
 * Two sweeps never run at once: a trigger while a sweep of the same kind (real or dry run)
 * runs joins it and gets its report; a trigger of the other kind waits for it, then runs.
 * The cron task also uses node-cron's `noOverlap`, so a tick during a long sweep is skipped.
 */
import cron from 'node-cron';
import type { Logger as CronLogger, ScheduledTask } from 'node-cron';
import type { Logger } from '../shared/log.ts';
import { normalizeRoutePath } from '../proxy/route-sync.ts';
import type { RouteInfo } from '../proxy/types.ts';
import { fetchActivity } from './activity.ts';
import { forEachLimit } from '../shared/limit.ts';
import { decide, needsJupyter } from './policy.ts';
import type { ClusterReport, CullCandidate, CullerConfig, CullerDeps, JupyterActivity, RouteEvidence, SweepReport } from './types.ts';

interface Slot { dryRun: boolean; promise: Promise<SweepReport> }
/** The proxy's routing table this sweep: every route, and those idle since the cutoff. */
interface Routes { all: Record<string, RouteInfo>; idle: Record<string, RouteInfo> }

/** Culls idle and over-age clusters and sweeps orphans; `start()` schedules it, `sweep()` runs it now. */
export class Culler {
  readonly #deps: CullerDeps;
  readonly #config: CullerConfig;
  readonly #log: Logger;
  readonly #now: () => Date;
  #task: ScheduledTask | null = null;
  #running: Slot | null = null;
  #waiting: (Slot & { begin(): void }) | null = null;
  #last: SweepReport | null = null;
  /** When each orphan without a creation time was first seen, so it still ages. */
  readonly #orphanFirstSeen = new Map<string, number>();

  constructor(deps: CullerDeps, config: CullerConfig) {
    this.#deps = deps;
    this.#config = config;
    this.#log = deps.log;
    this.#now = deps.now ?? (() => new Date());
  }

  /** Run a sweep now (or join the one running). `dryRun` defaults to `culler.dryRun`. */
  sweep(options: { dryRun?: boolean } = {}): Promise<SweepReport> {
    const dryRun = options.dryRun ?? this.#config.dryRun;
    for (const slot of [this.#running, this.#waiting]) {
      if (slot && slot.dryRun === dryRun) return slot.promise;
    }
    if (!this.#running) return this.#launch(dryRun);
    // A sweep of the other kind runs, and nothing of this kind waits yet: wait behind it.
    const { promise, resolve, reject } = Promise.withResolvers<SweepReport>();
    this.#waiting = { dryRun, promise, begin: () => this.#launch(dryRun).then(resolve, reject) };
    return promise;
  }

  /** Schedule sweeps on `culler.schedule` (not when `culler.enabled` is false; `sweep()` still works). */
  start(): void {
    if (this.#task) return;
    if (!this.#config.enabled) {
      this.#log.info('culler disabled (culler.enabled: false); sweeps run only when asked');
      return;
    }
    this.#task = cron.schedule(this.#config.schedule, async () => { await this.sweep(); }, {
      name: 'culler',
      noOverlap: true,
      logger: cronLogger(this.#log),
    });
    this.#log.info({ schedule: this.#config.schedule, nextSweepAt: this.nextSweepAt()?.toISOString() }, 'culler scheduled');
  }

  /** Stop scheduling and wait for a running sweep to finish. */
  async stop(): Promise<void> {
    const task = this.#task;
    this.#task = null;
    if (task) {
      await task.stop();
      await task.destroy();
    }
    await Promise.allSettled([this.#running?.promise, this.#waiting?.promise]);
  }

  /** When the next scheduled sweep runs, or null when not started. */
  nextSweepAt(): Date | null {
    return this.#task?.getNextRun() ?? null;
  }

  /**
   * The scheduled sweep that will cull a cluster whose policy says `cullAt`: the first
   * run at or after it (null when not started, or beyond the next 8,192 runs).
   */
  sweepAtOrAfter(cullAt: Date): Date | null {
    if (!this.#task) return null;
    for (let count = 16; count <= 8192; count *= 2) {
      const found = this.#task.getNextRuns(count).find((run) => run.getTime() >= cullAt.getTime());
      if (found) return found;
    }
    return null;
  }

  /** The report of the last finished sweep (the admin page's idle times and cull times). */
  lastReport(): SweepReport | null {
    return this.#last;
  }

  #launch(dryRun: boolean): Promise<SweepReport> {
    const promise = this.#run(dryRun).finally(() => {
      this.#running = null;
      const next = this.#waiting;
      this.#waiting = null;
      next?.begin();
    });
    this.#running = { dryRun, promise };
    return promise;
  }

  async #run(dryRun: boolean): Promise<SweepReport> {
    const started = this.#now();
    const report: SweepReport = {
      startedAt: started.toISOString(), finishedAt: '', durationMs: 0, dryRun,
      clusters: [], culled: [], orphansRemoved: [], orphansWaiting: [], errors: [],
    };
    const routes = await this.#routes(started, report);
    let known: CullCandidate[] | null = null;
    try {
      // Read after the routes: a route seen above was added after its cluster's row, so
      // every live route belongs to a cluster listed here.
      known = this.#deps.clusters();
    } catch (err) {
      report.errors.push({ step: 'clusters', message: message(err) });
    }
    // Without the hub's list nothing is known, so nothing may be called orphaned.
    if (known) {
      await forEachLimit(known, this.#config.concurrency, (c) => this.#judge(c, routes, started, dryRun, report),
        (c, err) => report.errors.push({ user: c.user, step: 'activity', message: message(err) }));
      await this.#removeOrphans(known, dryRun, report);
    }

    report.clusters.sort((a, b) => a.user.localeCompare(b.user));
    report.culled.sort();
    const finished = this.#now();
    report.finishedAt = finished.toISOString();
    report.durationMs = finished.getTime() - started.getTime();
    this.#last = report;
    this.#log.info({
      dryRun, checked: report.clusters.length, culled: report.culled, orphansRemoved: report.orphansRemoved,
      jupyterUnreachable: report.clusters.filter((c) => c.jupyterUnreachable).length,
      errors: report.errors.length, durationMs: report.durationMs,
    }, dryRun ? 'cull sweep (dry run) done' : 'cull sweep done');
    return report;
  }

  /** All routes and the idle ones (`inactive_since`), or null when the proxy API fails. */
  async #routes(now: Date, report: SweepReport): Promise<Routes | null> {
    // CHP lists routes with last_activity strictly before inactive_since; one millisecond
    // later makes "idle exactly the timeout" count as idle, as the policy does.
    const cutoff = new Date(now.getTime() - this.#config.idleTimeoutSeconds * 1000 + 1);
    try {
      const [idle, all] = await Promise.all([this.#deps.proxy.getRoutes(cutoff), this.#deps.proxy.getRoutes()]);
      return { idle, all };
    } catch (err) {
      report.errors.push({ step: 'routes', message: message(err) });
      this.#log.error({ err }, 'culler cannot read the proxy routes; only max age is applied this sweep');
      return null;
    }
  }

  async #judge(c: CullCandidate, routes: Routes | null, now: Date, dryRun: boolean, report: SweepReport): Promise<void> {
    const route = routeEvidence(c.routePath, routes);
    const base = { cluster: c, route, now, config: this.#config };
    const jupyter = needsJupyter(base)
      ? await fetchActivity(c, { timeoutMs: this.#deps.activityTimeoutMs })
      : null;
    const decision = decide({ ...base, jupyter });
    const seen = latestActivity(route, jupyter, now);
    // Observing activity changes no cluster, so a dry run records it too.
    if (seen) this.#deps.recordActivity?.(c.user, seen);
    const line: ClusterReport = {
      user: c.user, action: decision.action, reason: decision.reason, idleSeconds: decision.idleSeconds,
      cullAt: decision.cullAt?.toISOString() ?? null, lastActivity: seen?.toISOString() ?? null, evidence: decision.evidence, stopped: false,
    };
    if (jupyter && 'unreachable' in jupyter) {
      line.jupyterUnreachable = jupyter.unreachable;
      this.#log.debug({ user: c.user, jupyter: jupyter.unreachable, decidedBy: decision.evidence, action: decision.action }, 'Jupyter unreachable');
    }
    report.clusters.push(line);
    if (decision.action !== 'cull') return;

    report.culled.push(c.user);
    const evidence = decision.evidence === 'proxy' && line.jupyterUnreachable ? `proxy only (Jupyter unreachable: ${line.jupyterUnreachable})` : decision.evidence;
    this.#log.info({ user: c.user, reason: decision.reason, idleSeconds: decision.idleSeconds, evidence, dryRun },
      dryRun ? 'would cull cluster (dry run)' : 'culling cluster');
    if (dryRun) return;
    try {
      await this.#deps.stop(c.user, decision.reason);
      line.stopped = true;
    } catch (err) {
      report.errors.push({ user: c.user, step: 'stop', message: message(err) });
      this.#log.error({ user: c.user, err }, 'culler could not stop cluster');
    }
  }

  /** Remove backend clusters the hub has no record of, once older than the grace period. */
  async #removeOrphans(known: CullCandidate[], dryRun: boolean, report: SweepReport): Promise<void> {
    let orphans: Awaited<ReturnType<CullerDeps['orphans']>>;
    try {
      orphans = await this.#deps.orphans();
    } catch (err) {
      report.errors.push({ step: 'orphans', message: message(err) });
      return;
    }
    const now = this.#now().getTime();
    const knownUsers = new Set(known.map((c) => c.user));
    for (const user of this.#orphanFirstSeen.keys()) {
      if (!orphans.some((o) => o.user === user)) this.#orphanFirstSeen.delete(user);
    }
    const due = [];
    for (const orphan of orphans) {
      if (knownUsers.has(orphan.user)) continue;
      const created = orphan.createdAt ? Date.parse(orphan.createdAt) : NaN;
      if (!this.#orphanFirstSeen.has(orphan.user)) this.#orphanFirstSeen.set(orphan.user, now);
      const since = Number.isFinite(created) ? Math.min(created, now) : this.#orphanFirstSeen.get(orphan.user)!;
      const removeAt = since + this.#config.orphanGraceSeconds * 1000;
      if (now >= removeAt) due.push(orphan.user);
      else report.orphansWaiting.push({ user: orphan.user, removeAt: new Date(removeAt).toISOString() });
    }
    await forEachLimit(due, this.#config.concurrency, async (user) => {
      this.#log.info({ user, dryRun }, dryRun ? 'would remove orphaned cluster (dry run)' : 'removing orphaned cluster');
      if (!dryRun) {
        await this.#deps.removeOrphan(user);
        this.#orphanFirstSeen.delete(user);
      }
      report.orphansRemoved.push(user);
    }, (user, err) => report.errors.push({ user, step: 'removeOrphan', message: message(err) }));
  }
}

/** The proxy's evidence for one route path. */
function routeEvidence(routePath: string, routes: Routes | null): RouteEvidence {
  if (!routes) return 'unknown';
  const path = normalizeRoutePath(routePath);
  const idle = routes.idle[path];
  const info = idle ?? routes.all[path];
  if (!info) return 'missing';
  const at = info.last_activity ? new Date(info.last_activity) : null;
  return { lastActivity: at && !Number.isNaN(at.getTime()) ? at : null, inactive: idle !== undefined };
}

/** The later of the proxy's and Jupyter's last activity (now while a kernel is busy), clamped to now (clock skew), or null. */
function latestActivity(route: RouteEvidence, jupyter: JupyterActivity | null, now: Date): Date | null {
  // A busy kernel sends nothing while it computes, and is the opposite of idle.
  if (jupyter && !('unreachable' in jupyter) && jupyter.busyKernels > 0) return now;
  const times = [
    typeof route === 'object' ? route.lastActivity : null,
    jupyter && !('unreachable' in jupyter) ? jupyter.lastActivity : null,
  ].filter((t): t is Date => t !== null).map((t) => Math.min(t.getTime(), now.getTime()));
  return times.length ? new Date(Math.max(...times)) : null;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** node-cron's own messages (overlap skipped, missed ticks) into our log. */
function cronLogger(log: Logger): CronLogger {
  return {
    info: (m) => log.info({ component: 'node-cron' }, m),
    warn: (m) => log.warn({ component: 'node-cron' }, m),
    error: (m, err) => {
      const error = err ?? (typeof m === 'string' ? undefined : m);
      log.error({ component: 'node-cron', ...(error ? { err: error } : {}) }, typeof m === 'string' ? m : m.message);
    },
    debug: (m) => log.debug({ component: 'node-cron' }, typeof m === 'string' ? m : m.message),
  };
}
