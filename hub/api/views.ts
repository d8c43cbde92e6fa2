/** JSON shapes of the REST API (JupyterHub's where they overlap). */
import type { SpawnManager } from '../../spawner/manager.ts';
import { HttpError } from '../errors.ts';
import type { Store, UserRow } from '../store/types.ts';

/** One user as `GET /users/{name}` returns it. */
export function userModel(user: UserRow, manager: SpawnManager, store: Store) {
  const view = manager.view(user.login);
  const record = store.getCluster(user.login);
  const lastEvent = store.listEvents({ user: user.login, limit: 1 })[0];
  const pending = view.phase === 'queued' || view.phase === 'starting' ? 'spawn' : view.phase === 'stopping' ? 'stop' : null;
  return {
    kind: 'user',
    name: user.login,
    admin: user.admin,
    created: user.createdAt,
    last_activity: record?.lastActivity ?? user.lastSeen,
    server: view.phase === 'running' ? view.url ?? null : null,
    pending,
    cluster: {
      phase: view.phase,
      workers: view.workers,
      ...(view.queuePosition ? { queue_position: view.queuePosition } : {}),
      url: view.phase === 'running' ? view.url ?? null : null,
      started: view.createdAt ?? null,
      ready: view.readyAt ?? null,
      last_activity: record?.lastActivity ?? null,
      backend: record?.backend ?? manager.backend.kind,
    },
    last_event: lastEvent ? { time: lastEvent.time, kind: lastEvent.kind, actor: lastEvent.actor, ...lastEvent.detail } : null,
  };
}

/** The user called `name`; 404 when the hub has never seen them. */
export function existingUser(store: Store, name: string): UserRow {
  const user = store.getUser(name);
  if (!user) throw new HttpError(404, `No such user: ${name}`);
  return user;
}
