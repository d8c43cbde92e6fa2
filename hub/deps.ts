/** Everything the hub's routes need, passed in (no module singletons). */
import type { Config } from '../config/schema.ts';
import type { Logger } from '../shared/log.ts';
import type { SpawnManager } from '../spawner/manager.ts';
import type { Proxy } from '../proxy/types.ts';
import type { HubMetrics } from './metrics.ts';
import type { Store } from './store/types.ts';

/** What the admin API asks of the culler (a sweep now, with or without changes). */
export interface CullerControl {
  sweep(options?: { dryRun?: boolean }): Promise<unknown>;
  /** Idle seconds and the time of the next cull per user, for the admin page. */
  outlook?(): Promise<Map<string, { idleSeconds: number | null; cullAt: string | null }>>;
}

export interface HubDeps {
  config: Config;
  store: Store;
  manager: SpawnManager;
  proxy: Proxy;
  log: Logger;
  metrics: HubMetrics;
  secrets: { cookieSecret: string };
  culler?: CullerControl;
  /** Warnings for instructors, shown on the admin page (e.g. the backend does not isolate students). */
  warnings?: string[];
  /** What `/hub/health` reports (`status` other than `ok` answers 503). */
  health?: () => { status: string };
  /** Dashboard links of a running cluster (label → path under /user/{name}/). */
  links?: (user: string) => Promise<Record<string, string>> | undefined;
}
