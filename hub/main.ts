/**
 * Starts a whole hub: store, proxy (managed or external), backend, spawn manager, the koa
 * app, route repair on a timer and after proxy restarts, and the culler.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
// Only what the managed proxy's spawn needs is imported statically: the rest of the hub
// loads after the spawn (below), while the proxy, a process of its own, starts beside it.
import type { ChpClient } from '../proxy/client.ts';
import { ChpSupervisor, type ChpState } from '../proxy/supervisor.ts';
import type { Removal } from '../spawner/reconcile.ts';
import type { SpawnManager } from '../spawner/manager.ts';
import type { Logger } from '../shared/log.ts';
import type { Backend } from '../spawner/types.ts';
import { createLogger } from './log.ts';
import { loadSecrets } from './secrets.ts';
import type { Store } from './store/types.ts';

export interface RunningHub {
  /** Where students go (the proxy's public address). */
  publicUrl: string;
  /** The hub process itself (behind the proxy). */
  hubUrl: string;
  /** The proxy's REST API. */
  proxyApiUrl: string;
  store: Store;
  manager: SpawnManager;
  backend: Backend;
  proxy: ChpClient;
  supervisor?: ChpSupervisor;
  /** Compare clusters, records and routes now (the timer does it too). */
  repair(): Promise<void>;
  /** Settles when the removals decided at start (half-started clusters) are done. */
  startupRemovals: Promise<void>;
  /** What `/hub/health` reports. */
  health(): HubHealth;
  /** Stops the hub and its managed proxy; clusters keep running for the next start. */
  close(): Promise<void>;
}

export interface StartHubOptions {
  log?: Logger;
  /** A backend built by the caller (tests); otherwise from `spawn.backend`. */
  backend?: Backend;
  /** Progress lines of first-run setup (the Python environment). */
  onSetup?: (line: string) => void;
  /** Aborted by a signal during start: everything started so far (the proxy first) is stopped. */
  signal?: AbortSignal;
  /** The managed proxy's process, started before the config was read (proxy/chp-process.ts prestartChp); killed if unused. */
  proxyProcess?: import('node:child_process').ChildProcess;
}

/** The hub's own view of its health; `status` is `degraded` while a managed proxy is not running. */
export interface HubHealth {
  status: 'ok' | 'degraded';
  proxy: { mode: 'external' } | ({ mode: 'managed' } & ChpState);
  /** The last pass of reconcile and route repair. */
  repair: { at: string | null; ok: boolean; error?: string };
}

/** Starts the hub described by `config`; rejects with a clear error when something is wrong. */
export async function startHub(config: Config, options: StartHubOptions = {}): Promise<RunningHub> {
  const log = options.log ?? createLogger(config.hub.logLevel);
  const secrets = loadSecrets(config);
  const cleanups: Array<() => Promise<void> | void> = [];
  let closing: Promise<void> | undefined;
  const closeAll = () => (closing ??= (async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  })());
  // A signal during start must not wait for a slow step (an API server that does not answer).
  const cancelled = new Promise<never>((_, reject) => {
    const abort = () => reject(new Error(`start cancelled (${String(options.signal?.reason ?? 'aborted')})`));
    if (options.signal?.aborted) abort();
    options.signal?.addEventListener('abort', abort, { once: true });
  });
  cancelled.catch(() => {});
  const step = <T>(p: Promise<T>): Promise<T> => Promise.race([p, cancelled]);
  try {
    const managed = config.proxy.mode === 'managed';
    // The managed proxy (a process of its own) starts while the hub loads the rest of itself.
    let repairAfterProxyRestart = (): void => {};
    let supervisor: ChpSupervisor | undefined;
    if (managed) {
      const started = new ChpSupervisor({
        ip: config.hub.bind, port: config.hub.port, apiIp: '127.0.0.1', apiPort: config.hub.port + 1,
        defaultTarget: `http://127.0.0.1:${config.hub.hubPort}`, authToken: secrets.proxyAuthToken, logger: log,
        // CHP logs every API call at info; the hub logs the route changes that matter.
        logLevel: config.hub.logLevel === 'debug' || config.hub.logLevel === 'trace' ? 'debug' : 'warn',
        // Each student's cluster on a host of its own: CHP keys routes by host first.
        extraArgs: config.hub.userSubdomains ? ['--host-routing'] : [],
        prestarted: options.proxyProcess,
      });
      supervisor = started;
      started.on('restart', (info) => {
        log.warn({ ...info }, 'proxy restarted; putting every route back');
        repairAfterProxyRestart();
      });
      // Registered before it starts: a stop during the start ends the child too.
      cleanups.push(() => started.stop());
    }
    if (!managed) options.proxyProcess?.kill('SIGKILL');
    const proxyStarting = supervisor?.start() ?? Promise.resolve();
    proxyStarting.catch(() => {}); // awaited below, where the hub needs it
    // The proxy's port checks take a few event-loop turns: loading the app meanwhile would
    // hold its spawn back until the app is loaded (~0.4 s later, measured), serialising the two.
    if (supervisor) await step(Promise.race([once(supervisor, 'spawn'), proxyStarting]));
    const [
      { createApp }, { createCuller }, { createMetrics }, { openStore }, { ChpClient }, { reconcile, removeClusters }, { syncRoutes },
      { SpawnManager }, { trackActivity }, { syncAdminFlags }, { publicUrl: publicUrlOf }, { createBackend }, { keepEventsFor },
      { routeScheme, serverUrlOf },
    ] = await step(Promise.all([
      import('./app.ts'), import('./culler-wiring.ts'), import('./metrics.ts'), import('./store/sqlite.ts'), import('../proxy/client.ts'),
      import('../spawner/reconcile.ts'), import('../proxy/route-sync.ts'), import('../spawner/manager.ts'), import('./activity.ts'),
      import('./auth/admins.ts'), import('./auth/settings.ts'), import('./backends.ts'), import('./events.ts'), import('./origins.ts'),
    ]));
    // Closed last (cleanups run in reverse).
    const store = openStore(join(config.hub.stateDir, 'clusterhub.sqlite'));
    cleanups.unshift(() => store.close());
    const metrics = createMetrics({ process: true });
    // Admins are auth.admins (as configured now) plus the console's instructors (hub/roster.ts).
    syncAdminFlags(store, config);
    cleanups.push(keepEventsFor(store, config.hub.eventRetentionDays, log));

    const routes = routeScheme(config);
    const proxyApiUrl = config.proxy.apiUrl ?? `http://127.0.0.1:${config.hub.port + 1}`;
    const proxy = new ChpClient({ apiUrl: proxyApiUrl, authToken: secrets.proxyAuthToken });
    const backend = options.backend ?? await step(createBackend(config, { log, onSetup: options.onSetup, onKubernetesRequest: (what) => metrics.kubernetesRequest(what) }));
    cleanups.push(() => backend.close?.());
    const manager = new SpawnManager({
      backend, proxy, records: store, log, metrics,
      startTimeoutSeconds: config.spawn.startTimeoutSeconds, queueTimeoutSeconds: config.spawn.queueTimeoutSeconds,
      concurrency: config.spawn.concurrency, maxWorkers: config.spawn.maxWorkers,
      routes, serverUrl: serverUrlOf(config),
    });
    cleanups.push(() => manager.close());

    const repairRoutes = async () => {
      const result = await syncRoutes(proxy, () => manager.wantedRoutes(), { logger: log, manages: routes.manages });
      metrics.routeRepairs('added', result.added);
      metrics.routeRepairs('fixed', result.fixed);
      metrics.routeRepairs('removed', result.removed);
      // The table is read anyway: its activity keeps last_activity fresh between sweeps.
      for (const cluster of store.listClusters()) {
        const at = result.routes[routes.path(cluster.user)]?.last_activity;
        if (cluster.phase === 'running' && at && Number.isFinite(Date.parse(at))) store.recordActivity(cluster.user, new Date(Math.min(Date.parse(at), Date.now())));
      }
    };
    const reconcileDeps = {
      backend, records: store, log,
      busy: () => manager.busyUsers(),
      generation: () => manager.generation(),
      changedSince: (user: string, since: number) => manager.changedSince(user, since),
      knownUser: (l: string) => store.getUser(l) !== undefined,
    };
    // Removals run beside route repair, never before it: a half-started cluster must not delay the running ones.
    const remove = (removals: Removal[]) => removeClusters(removals, (r) => manager.remove(r), { limit: config.spawn.concurrency, log });
    const lastRepair: HubHealth['repair'] = { at: null, ok: true };
    const noteRepair = (err?: unknown) => {
      Object.assign(lastRepair, { at: new Date().toISOString(), ok: err === undefined });
      if (err === undefined) delete lastRepair.error;
      else lastRepair.error = String((err as Error)?.message ?? err);
    };
    // Routes are repaired even when the backend cannot be asked (an API server outage): the records still know them.
    const repair = async () => {
      let failure: unknown;
      const removals = await reconcile(reconcileDeps).then((r) => r.removals, (err) => {
        failure = err;
        return [];
      });
      await repairRoutes().catch((err) => (failure ??= err));
      await remove(removals);
      noteRepair(failure);
      metrics.activeClusters(store.countClusters('running'));
      if (failure !== undefined) throw failure;
    };

    const health = (): HubHealth => {
      const proxyState: HubHealth['proxy'] = supervisor ? { mode: 'managed', ...supervisor.state } : { mode: 'external' };
      const down = proxyState.mode === 'managed' && proxyState.state !== 'running';
      return { status: down ? 'degraded' : 'ok', proxy: proxyState, repair: { ...lastRepair } };
    };
    const warnings = backend.warnings?.() ?? [];
    for (const warning of warnings) log.warn({ backend: backend.kind }, warning);
    const culler = createCuller({ config, store, manager, proxy, backend, log, metrics });
    const app = createApp({ config, store, manager, proxy, log, metrics, secrets, health, warnings, culler: culler ?? undefined, links: (user) => backend.links?.(user) });
    const hubHost = managed ? '127.0.0.1' : config.hub.bind;
    const server = await step(listen(app.callback(), config.hub.hubPort, hubHost, managed));
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));

    // Stopped before the hub's server, as it was started after it.
    if (supervisor) cleanups.push(() => supervisor.stop());
    await step(proxyStarting);
    repairAfterProxyRestart = () => {
      repairRoutes().catch((err) => log.error({ err }, 'route repair after proxy restart failed'));
    };

    // The records know the running clusters: their routes need no API server, so they come back first.
    await step(repairRoutes());
    // Then one reconcile pass, bounded: a backend that does not answer must not keep the hub from starting.
    const firstPass = reconcile(reconcileDeps).then((report) => {
      noteRepair();
      return report.removals;
    }, (err) => {
      noteRepair(err);
      log.error({ err }, 'reconcile at start failed; routes come from the records, the next repair tries again');
      return [] as Removal[];
    });
    const removals = await step(Promise.race([firstPass, unrefDelay(STARTUP_RECONCILE_MS)]));
    if (!removals) log.warn({ seconds: STARTUP_RECONCILE_MS / 1000 }, 'reconcile at start is slow; it finishes in the background');
    // Routes of what the pass marked for removal go now; the removals themselves run after, side by side.
    await step(repairRoutes());
    const startupRemovals = (async () => {
      const late = !removals;
      const decided = removals ?? await firstPass;
      if (late) await repairRoutes().catch((err) => log.error({ err }, 'route repair after a late reconcile failed'));
      await remove(decided);
    })();
    cleanups.push(() => startupRemovals);
    metrics.activeClusters(store.countClusters('running'));
    culler?.start();
    // Cleanups run in reverse: the culler stops (and its sweep finishes) before the proxy goes.
    cleanups.push(() => culler?.stop());
    cleanups.push(trackActivity({ store, proxy, log, routePath: (user) => manager.routes.path(user) }, config.hub.activityIntervalSeconds));
    let repairing = false;
    const timer = setInterval(() => {
      // A pass slower than the interval is not stacked on.
      if (repairing) return;
      repairing = true;
      repair().catch((err) => log.error({ err }, 'periodic repair failed')).finally(() => (repairing = false));
    }, config.proxy.checkRoutesSeconds * 1000);
    timer.unref();
    cleanups.push(() => clearInterval(timer));

    const publicUrl = publicUrlOf(config);
    log.info({ publicUrl, backend: backend.kind, proxy: config.proxy.mode, removing: removals?.length ?? 'pending' }, 'clusterhub is up');
    // prom-client is loaded now that the hub answers (hub/metrics.ts): updates made so far are applied then.
    setImmediate(() => metrics.registry().catch((err) => log.error({ err }, 'the metrics could not be set up')));
    return {
      publicUrl, hubUrl: `http://${hubHost}:${config.hub.hubPort}`, proxyApiUrl, store, manager, backend, proxy, supervisor,
      repair, startupRemovals, health,
      close: closeAll,
    };
  } catch (err) {
    await closeAll().catch(() => {});
    throw err;
  }
}

/** How long the start waits for its first reconcile pass before going on without it. */
const STARTUP_RECONCILE_MS = 30_000;

/** Resolves with undefined after `ms`, without keeping the process alive. */
function unrefDelay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(resolve, ms, undefined).unref());
}

/**
 * The hub's HTTP server. Behind the managed proxy (its only client, on loopback) idle
 * connections are never closed by the hub: CHP keeps them to reuse, and a hub that closed
 * one on its keep-alive timer raced the proxy reusing it. When the hub's event loop was busy
 * past the timer (a class launching at once on a loaded machine), the timer fired before the
 * request already sent on that connection was read, and the proxy answered it 503 (reset).
 */
function listen(handler: Parameters<typeof import('node:http').createServer>[1], port: number, host: string, behindManagedProxy: boolean): Promise<Server> {
  return import('node:http').then(({ createServer }) => new Promise<Server>((resolve, reject) => {
    const server = createServer(handler);
    if (behindManagedProxy) server.keepAliveTimeout = 0;
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new Error(`hub.hubPort ${port} on ${host} is in use`) : err));
    server.listen(port, host, () => resolve(server));
  }));
}
