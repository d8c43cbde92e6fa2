/**
 * JSON shapes of the REST API: JupyterHub 5's user and server models (so its clients read
 * them unchanged), plus clusterhub's own `cluster`. Nothing else: a list page of 200 users
 * is written per request (and copied by the proxy), so every field costs every poll. Who is
 * an instructor is `admin` and `roles`; culls and the last event are in `GET /events`, the
 * class CSV and the console.
 */
import { userUrl, type ClusterView } from '../../spawner/cluster-view.ts';
import type { SpawnManager } from '../../spawner/manager.ts';
import { HttpError } from '../errors.ts';
import type { Store, UserListing, UserRow } from '../store/types.ts';

/** What a model needs besides the row: the live view of launches, and where the hub is. */
export interface ModelContext {
  manager: SpawnManager;
  /** Public URL of the hub without a trailing slash, for `full_url`; omitted when unknown. */
  publicUrl?: string;
  /** JupyterHub's `include_stopped_servers`: list the default server even when it is stopped. */
  includeStopped?: boolean;
}

/** JupyterHub's `pending`: a launch in flight is `spawn`, a stop in flight `stop`. */
function pendingOf(view: ClusterView): 'spawn' | 'stop' | null {
  if (view.phase === 'queued' || view.phase === 'starting') return 'spawn';
  return view.phase === 'stopping' ? 'stop' : null;
}

/** The progress stream of a user's default server, as JupyterHub names it. */
export function progressUrl(login: string): string {
  return `/hub/api/users/${encodeURIComponent(login)}/server/progress`;
}

/** JupyterHub's server model of the user's one (default, unnamed) server. */
export function serverModel(listing: UserListing, view: ClusterView, context: ModelContext) {
  // With hub.userSubdomains the manager's URL is on the student's own origin.
  const url = view.url ?? userUrl(encodeURIComponent(listing.login));
  const absolute = /^https?:\/\//.test(url);
  const cluster = listing.cluster;
  const progress = progressUrl(listing.login);
  return {
    name: '',
    full_name: `${listing.login}/`,
    last_activity: cluster?.lastActivity ?? cluster?.readyAt ?? cluster?.createdAt ?? null,
    started: cluster?.createdAt ?? view.createdAt ?? null,
    pending: pendingOf(view),
    ready: view.phase === 'running',
    stopped: view.phase === 'stopped',
    url,
    user_options: view.phase === 'stopped' ? {} : { workers: view.workers },
    progress_url: progress,
    full_url: absolute ? url : context.publicUrl ? `${context.publicUrl}${url}` : null,
    full_progress_url: context.publicUrl ? `${context.publicUrl}${progress}` : null,
  };
}

/** One user as `GET /users/{name}` and `GET /users` return them. */
export function listingModel(listing: UserListing, context: ModelContext) {
  const view = context.manager.view(listing.login, { record: listing.cluster ?? undefined });
  const running = view.phase === 'running';
  const active = view.phase !== 'stopped';
  const servers = active || context.includeStopped ? { '': serverModel(listing, view, context) } : {};
  const cluster = listing.cluster;
  return {
    kind: 'user',
    name: listing.login,
    admin: listing.admin,
    roles: listing.admin ? ['admin', 'user'] : ['user'],
    groups: [] as string[],
    server: running ? view.url ?? userUrl(encodeURIComponent(listing.login)) : null,
    pending: pendingOf(view),
    created: listing.createdAt,
    last_activity: listing.lastActivity,
    servers,
    cluster: {
      phase: view.phase,
      workers: view.workers,
      ...(view.queuePosition ? { queue_position: view.queuePosition } : {}),
      url: running ? view.url ?? null : null,
      started: view.createdAt ?? null,
      ready: view.readyAt ?? null,
      last_activity: cluster?.lastActivity ?? null,
      backend: cluster?.backend ?? context.manager.backend.kind,
    },
  };
}

/** One user's model, read in one query (the routes that already hold the row use this). */
export function userModel(user: UserRow, manager: SpawnManager, store: Store, context: Omit<ModelContext, 'manager'> = {}) {
  const listing = store.userListing(user.login);
  if (!listing) throw new Error(`user ${user.login} vanished while building its model`);
  return listingModel(listing, { ...context, manager });
}

/** The user called `name`; 404 when the hub has never seen them. */
export function existingUser(store: Store, name: string): UserRow {
  const user = store.getUser(name);
  if (!user) throw new HttpError(404, `No such user: ${name}`);
  return user;
}
