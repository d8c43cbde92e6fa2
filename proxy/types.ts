/**
 * The proxy contract: what the hub, route sync and the culler need of
 * configurable-http-proxy (its REST API), so tests and other proxies can stand in.
 */

/** A route as configurable-http-proxy reports it. */
export interface RouteInfo {
  target: string;
  last_activity?: string;
  [key: string]: unknown;
}

/** The proxy contract (configurable-http-proxy's REST API). */
export interface Proxy {
  addRoute(path: string, target: string, data?: Record<string, unknown>): Promise<void>;
  deleteRoute(path: string): Promise<void>;
  /** All routes, or those with no activity since `inactiveSince`. Keys are paths like `/user/a`. */
  getRoutes(inactiveSince?: Date): Promise<Record<string, RouteInfo>>;
}
