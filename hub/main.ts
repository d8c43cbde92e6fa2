/**
 * Starts a whole hub: store, proxy (managed or external), backend, spawn manager, the koa
 * app, route repair on a timer and after proxy restarts, and the culler.
 */
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import { checkCullerConfig } from '../culler/config.ts';
import { ChpClient } from '../proxy/client.ts';
import { ChpSupervisor } from '../proxy/supervisor.ts';
import { reconcile } from '../spawner/reconcile.ts';
import { syncRoutes } from '../proxy/route-sync.ts';
import { SpawnManager } from '../spawner/manager.ts';
import type { Logger } from '../shared/log.ts';
import type { Backend } from '../spawner/types.ts';
import { createApp } from './app.ts';
import { syncAdminFlags } from './auth/admins.ts';
import { checkAuthConfig, publicUrl as publicUrlOf } from './auth/settings.ts';
import { createBackend } from './backends.ts';
import { createCuller } from './culler-wiring.ts';
import { createLogger } from './log.ts';
import { createMetrics } from './metrics.ts';
import { checkOriginConfig, routeScheme, serverUrlOf } from './origins.ts';
import { loadSecrets } from './secrets.ts';
import { openStore } from './store/sqlite.ts';
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
  /** Stops the hub and its managed proxy; clusters keep running for the next start. */
  close(): Promise<void>;
}

export interface StartHubOptions {
  log?: Logger;
  /** A backend built by the caller (tests); otherwise from `spawn.backend`. */
  backend?: Backend;
  /** Progress lines of first-run setup (the Python environment). */
  onSetup?: (line: string) => void;
}

/** Starts the hub described by `config`; rejects with a clear error when something is wrong. */
export async function startHub(config: Config, options: StartHubOptions = {}): Promise<RunningHub> {
  checkAuthConfig(config);
  checkOriginConfig(config);
  checkCullerConfig(config);
  const log = options.log ?? createLogger(config.hub.logLevel);
  const secrets = loadSecrets(config);
  const store = openStore(join(config.hub.stateDir, 'clusterhub.sqlite'));
  const metrics = createMetrics({ process: true });
  const cleanups: Array<() => Promise<void> | void> = [() => store.close()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    syncAdminFlags(store, config);

    const managed = config.proxy.mode === 'managed';
    const routes = routeScheme(config);
    const proxyApiUrl = config.proxy.apiUrl ?? `http://127.0.0.1:${config.hub.port + 1}`;
    const proxy = new ChpClient({ apiUrl: proxyApiUrl, authToken: secrets.proxyAuthToken });
    const backend = options.backend ?? await createBackend(config, { log, onSetup: options.onSetup });
    cleanups.push(() => backend.close?.());
    const manager = new SpawnManager({
      backend, proxy, records: store, log, metrics,
      startTimeoutSeconds: config.spawn.startTimeoutSeconds, concurrency: config.spawn.concurrency, maxWorkers: config.spawn.maxWorkers,
      routes, serverUrl: serverUrlOf(config),
    });
    cleanups.push(() => manager.close());

    const repairRoutes = async () => {
      const result = await syncRoutes(proxy, () => manager.wantedRoutes(), { logger: log, manages: routes.manages });
      metrics.routeRepairs('added', result.added);
      metrics.routeRepairs('fixed', result.fixed);
      metrics.routeRepairs('removed', result.removed);
    };
    const reconcileDeps = { backend, proxy, records: store, log, pending: () => manager.pendingUsers(), knownUser: (l: string) => store.getUser(l) !== undefined, routes };
    const repair = async () => {
      await reconcile(reconcileDeps, { startup: false });
      await repairRoutes();
      metrics.activeClusters(store.listClusters().filter((c) => c.phase === 'running').length);
    };

    const culler = createCuller({ config, store, manager, proxy, backend, log, metrics });
    const app = createApp({ config, store, manager, proxy, log, metrics, secrets, culler: culler ?? undefined, links: (user) => backend.links?.(user) });
    const hubHost = managed ? '127.0.0.1' : config.hub.bind;
    const server = await listen(app.callback(), config.hub.hubPort, hubHost);
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));

    let supervisor: ChpSupervisor | undefined;
    if (managed) {
      supervisor = new ChpSupervisor({
        ip: config.hub.bind, port: config.hub.port, apiIp: '127.0.0.1', apiPort: config.hub.port + 1,
        defaultTarget: `http://127.0.0.1:${config.hub.hubPort}`, authToken: secrets.proxyAuthToken, logger: log,
        // CHP logs every API call at info; the hub logs the route changes that matter.
        logLevel: config.hub.logLevel === 'debug' || config.hub.logLevel === 'trace' ? 'debug' : 'warn',
        // Each student's cluster on a host of its own: CHP keys routes by host first.
        extraArgs: config.hub.userSubdomains ? ['--host-routing'] : [],
      });
      supervisor.on('restart', (info) => {
        log.warn({ ...info }, 'proxy restarted; putting every route back');
        repairRoutes().catch((err) => log.error({ err }, 'route repair after proxy restart failed'));
      });
      supervisor.on('failed', (err) => log.error({ err }, 'the proxy keeps dying; giving up on restarting it'));
      await supervisor.start();
      const started = supervisor;
      cleanups.push(() => started.stop());
    }

    await reconcile(reconcileDeps, { startup: true });
    await repairRoutes();
    metrics.activeClusters(store.listClusters().filter((c) => c.phase === 'running').length);
    culler?.start();
    // Cleanups run in reverse: the culler stops (and its sweep finishes) before the proxy goes.
    cleanups.push(() => culler?.stop());
    const timer = setInterval(() => {
      repair().catch((err) => log.error({ err }, 'periodic repair failed'));
    }, config.proxy.checkRoutesSeconds * 1000);
    timer.unref();
    cleanups.push(() => clearInterval(timer));

    const publicUrl = publicUrlOf(config);
    log.info({ publicUrl, backend: backend.kind, proxy: config.proxy.mode }, 'clusterhub is up');
    return {
      publicUrl, hubUrl: `http://${hubHost}:${config.hub.hubPort}`, proxyApiUrl, store, manager, backend, proxy, supervisor,
      repair,
      close: closeAll,
    };
  } catch (err) {
    await closeAll().catch(() => {});
    throw err;
  }
}

function listen(handler: Parameters<typeof import('node:http').createServer>[1], port: number, host: string): Promise<Server> {
  return import('node:http').then(({ createServer }) => new Promise<Server>((resolve, reject) => {
    const server = createServer(handler);
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new Error(`hub.hubPort ${port} on ${host} is in use`) : err));
    server.listen(port, host, () => resolve(server));
  }));
}
