/**
 * Fixtures for the culler's tests and benchmark: a real
 * configurable-http-proxy on free loopback ports, and a stand-in hub that keeps its
 * clusters in memory and stops them the way the hub does (route first, then the record).
 */
import { ChpClient } from '../../proxy/client.ts';
import { ChpSupervisor } from '../../proxy/supervisor.ts';
import type { Logger } from '../../shared/log.ts';
import { configSchema } from '../../config/schema.ts';
import { freePort } from './net.ts';
import type { CullCandidate, CullerConfig, CullerDeps, Orphan } from '../../culler/types.ts';

export const PROXY_TOKEN = 'culler-test-token-0123456789abcdef';

/** A configurable-http-proxy child on free ports, with its API client. */
export async function startProxy(): Promise<{ client: ChpClient; publicUrl: string; stop(): Promise<void> }> {
  const supervisor = new ChpSupervisor({
    port: await freePort(),
    apiPort: await freePort(),
    defaultTarget: `http://127.0.0.1:${await freePort()}`,
    authToken: PROXY_TOKEN,
    logLevel: 'warn',
  });
  await supervisor.start();
  return { client: new ChpClient({ apiUrl: supervisor.apiUrl, authToken: PROXY_TOKEN }), publicUrl: supervisor.publicUrl, stop: () => supervisor.stop() };
}

/** The culler section with defaults filled in, as the hub's config loader produces it. */
export function cullerConfig(input: Partial<CullerConfig> = {}): CullerConfig {
  return configSchema.parse({ culler: input }).culler;
}

/** A running cluster of `user` whose Jupyter answers (or not) at `url`, created `ageSeconds` ago. */
export function candidate(user: string, url: string | null, ageSeconds = 3600, over: Partial<CullCandidate> = {}): CullCandidate {
  const created = new Date(Date.now() - ageSeconds * 1000).toISOString();
  return {
    user, phase: 'running', createdAt: created, readyAt: created, url,
    jupyterToken: `jupyter-token-of-${user}`, baseUrl: `/user/${user}/`, routePath: `/user/${user}`, ...over,
  };
}

/** A URL where nothing listens: a pod with no server, as on fake Kubernetes nodes. */
export async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

/** One log call, as a test reads it back. */
export interface LogLine { level: string; msg: string; obj: Record<string, unknown> }

/** A pino-shaped logger that keeps its lines. */
export function captureLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (a: object | string, b?: string) => {
    lines.push(typeof a === 'string' ? { level, msg: a, obj: {} } : { level, msg: b ?? '', obj: a as Record<string, unknown> });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * The hub as the culler sees it: clusters in memory, the stop path (delete the route,
 * then forget the cluster), backend orphans. `stopHook` runs first (to fail or block a stop).
 */
export class StandInHub {
  clusters: CullCandidate[];
  orphans: Orphan[] = [];
  readonly stopped: Array<{ user: string; reason: string }> = [];
  readonly removedOrphans: string[] = [];
  clustersCalls = 0;
  stopHook: (user: string) => Promise<void> | void = () => {};
  readonly #proxy: ChpClient;

  constructor(proxy: ChpClient, clusters: CullCandidate[]) {
    this.#proxy = proxy;
    this.clusters = clusters;
  }

  /** Add the proxy route of every candidate that has a URL, as the manager does when ready. */
  async addRoutes(): Promise<void> {
    for (const c of this.clusters) {
      if (c.url) await this.#proxy.addRoute(c.routePath, c.url, { user: c.user });
    }
  }

  /** The dependencies a `Culler` takes, with this hub behind them. */
  deps(log: Logger, now?: () => Date): CullerDeps {
    return {
      clusters: () => {
        this.clustersCalls++;
        return this.clusters.map((c) => ({ ...c }));
      },
      stop: async (user, reason) => {
        await this.stopHook(user);
        await this.#proxy.deleteRoute(`/user/${user}`);
        this.clusters = this.clusters.filter((c) => c.user !== user);
        this.stopped.push({ user, reason });
      },
      proxy: this.#proxy,
      orphans: async () => this.orphans.map((o) => ({ ...o })),
      removeOrphan: async (user) => {
        this.orphans = this.orphans.filter((o) => o.user !== user);
        this.removedOrphans.push(user);
      },
      log,
      now,
      activityTimeoutMs: 2000,
    };
  }
}
