/**
 * Where a user's cluster lives in the proxy's table. By path (`/user/{login}`: every student
 * on the hub's origin), or by host with CHP's `--host-routing` (`/{login}.{domain}/user/{login}`:
 * each student on an origin of their own). Pure: the spawn manager, route sync, reconcile and
 * the culler all ask the same scheme.
 */

/** How user routes are keyed. */
export interface RouteScheme {
  /** The CHP route key of `user`'s cluster (no trailing slash). */
  path(user: string): string;
  /** True for keys this scheme owns: route sync and the culler remove them when unwanted. */
  manages(path: string): boolean;
  /** The hostname a user's cluster is served on, when each user has one. */
  host?(user: string): string;
}

/** Path routing: `/user/{login}`. */
export const pathRoutes: RouteScheme = {
  path: (user) => `/user/${user}`,
  manages: (path) => path === '/user' || path.startsWith('/user/'),
};

/**
 * Host routing under `domain` (the hub's hostname, no port: CHP routes on the host without
 * it). Hostnames are case-insensitive and browsers send them lowercase.
 */
export function hostRoutes(domain: string): RouteScheme {
  const suffix = `.${domain.toLowerCase()}`;
  const host = (user: string) => `${user.toLowerCase()}${suffix}`;
  return {
    host,
    path: (user) => `/${host(user)}/user/${user}`,
    manages: (path) => {
      const [, first = '', second] = path.split('/');
      return first.endsWith(suffix) && second === 'user';
    },
  };
}
