/**
 * Route repair: CHP keeps its table in memory, so the hub compares it with the clusters it
 * knows and fixes the difference (JupyterHub's `check_routes`) instead of trusting it.
 */
import type { Proxy, RouteInfo } from './types.ts';
import { silentLogger, type Logger } from '../shared/log.ts';

/** A route that should exist: where it leads and the data stored with it. */
export interface WantedRoute {
  target: string;
  data?: Record<string, unknown>;
}

/** What to change so the proxy matches what is wanted. */
export interface RouteDiff {
  /** Routes the proxy lacks. */
  add: Array<{ path: string; target: string; data: Record<string, unknown> }>;
  /** Routes the proxy has with the wrong target. */
  fix: Array<{ path: string; target: string; data: Record<string, unknown> }>;
  /** Managed routes nobody wants any more (proxy paths). */
  remove: string[];
}

export interface RouteSyncOptions {
  /** Only routes under this prefix are managed, i.e. removed when not wanted (default `/user/`). */
  prefix?: string;
  /** Which route keys are managed, when a prefix cannot say (host routing); wins over `prefix`. */
  manages?: (path: string) => boolean;
  /** Requests to the proxy in flight at once (default 8). */
  concurrency?: number;
  logger?: Logger;
}

/** Counts of what one sync repaired, and what it failed to. */
export interface RouteSyncResult {
  added: number;
  fixed: number;
  removed: number;
  /** One per route that could not be changed; the others were still repaired. */
  errors: Error[];
  /** The proxy's table as read before the repair (with each route's `last_activity`). */
  routes: Record<string, RouteInfo>;
}

/** CHP's own form of a path: leading `/`, no trailing `/` (except the root). */
export function normalizeRoutePath(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.length > 1 ? withSlash.replace(/\/+$/, '') || '/' : withSlash;
}

/**
 * Compare the proxy's routes with the wanted ones. Missing and wrong-target routes are
 * (re)added; routes under `prefix` that are not wanted are removed; anything else
 * (the default `/`, routes another tool added) is left alone.
 */
export function diffRoutes(
  actual: Record<string, RouteInfo>,
  wanted: ReadonlyMap<string, WantedRoute>,
  prefix: string | ((path: string) => boolean) = '/user/',
): RouteDiff {
  const have = new Map<string, RouteInfo>();
  for (const [path, info] of Object.entries(actual)) have.set(normalizeRoutePath(path), info);
  const want = new Map<string, WantedRoute>();
  for (const [path, route] of wanted) want.set(normalizeRoutePath(path), route);

  const diff: RouteDiff = { add: [], fix: [], remove: [] };
  for (const [path, route] of want) {
    const current = have.get(path);
    const change = { path, target: route.target, data: route.data ?? {} };
    if (!current) diff.add.push(change);
    else if (current.target !== route.target) diff.fix.push(change);
  }
  const managed = typeof prefix === 'function' ? prefix : underPrefix(normalizeRoutePath(prefix));
  for (const path of have.keys()) {
    if (managed(path) && !want.has(path)) diff.remove.push(path);
  }
  return diff;
}

/**
 * Make the proxy's table match `wanted`. Pass a function to have the wanted routes
 * computed after the proxy was read, so a route added meanwhile by a launch is not
 * mistaken for a stale one, and asked again around each addition, so a stop that began
 * meanwhile is never undone. Throws only when the routes cannot be read.
 */
export async function syncRoutes(
  proxy: Proxy,
  wanted: ReadonlyMap<string, WantedRoute> | (() => ReadonlyMap<string, WantedRoute> | Promise<ReadonlyMap<string, WantedRoute>>),
  options: RouteSyncOptions = {},
): Promise<RouteSyncResult> {
  const log = options.logger ?? silentLogger();
  const actual = await proxy.getRoutes();
  const current = typeof wanted === 'function' ? wanted : () => wanted;
  const diff = diffRoutes(actual, await current(), options.manages ?? options.prefix);
  const result: RouteSyncResult = { added: 0, fixed: 0, removed: 0, errors: [], routes: actual };
  const stillWanted = async (path: string, target: string) => {
    for (const [p, route] of await current()) if (normalizeRoutePath(p) === path) return route.target === target;
    return false;
  };
  /** Adds a route unless it stopped being wanted; removes it again if that happened while it was added. */
  const put = async (r: RouteDiff['add'][number]): Promise<boolean> => {
    if (!(await stillWanted(r.path, r.target))) return false;
    await proxy.addRoute(r.path, r.target, r.data);
    if (await stillWanted(r.path, r.target)) return true;
    await proxy.deleteRoute(r.path);
    return false;
  };

  const jobs: Array<() => Promise<void>> = [
    ...diff.add.map((r) => async () => {
      if (!(await put(r))) return;
      result.added++;
      log.info({ path: r.path, target: r.target }, 'route sync: added missing route');
    }),
    ...diff.fix.map((r) => async () => {
      if (!(await put(r))) return;
      result.fixed++;
      log.warn({ path: r.path, target: r.target, was: actual[r.path]?.target }, 'route sync: fixed route target');
    }),
    ...diff.remove.map((path) => async () => {
      await proxy.deleteRoute(path);
      result.removed++;
      log.info({ path }, 'route sync: removed stale route');
    }),
  ];
  await runLimited(jobs, options.concurrency ?? 8, (err) => {
    const error = err instanceof Error ? err : new Error(String(err));
    result.errors.push(error);
    log.error({ err: error }, 'route sync: could not repair a route');
  });
  return result;
}

function underPrefix(prefix: string): (path: string) => boolean {
  return (path) => path === prefix || path.startsWith(`${prefix}/`);
}

/** Run jobs with at most `limit` in flight; a failing job is reported and the rest go on. */
async function runLimited(jobs: Array<() => Promise<void>>, limit: number, onError: (err: unknown) => void): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      await job().catch(onError);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), jobs.length) }, lane));
}
