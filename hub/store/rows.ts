/** Conversions between SQLite rows (snake_case, 0/1, JSON text) and the Store's row types. */
import type { SQLOutputValue } from 'node:sqlite';
import type { ClusterPhase, ClusterRow, EventRow, TokenRow, UserRow } from './types.ts';

type Raw = Record<string, SQLOutputValue>;

const text = (v: SQLOutputValue | undefined): string => String(v ?? '');
const textOrNull = (v: SQLOutputValue | undefined): string | null => (v === null || v === undefined ? null : String(v));
const numOrNull = (v: SQLOutputValue | undefined): number | null => (v === null || v === undefined ? null : Number(v));

export function toUser(r: Raw): UserRow {
  return {
    login: text(r.login),
    githubId: numOrNull(r.github_id),
    admin: Number(r.admin) === 1,
    instructor: Number(r.instructor) === 1,
    addedBy: textOrNull(r.added_by),
    createdAt: text(r.created_at),
    lastSeen: textOrNull(r.last_seen),
    lastActivity: textOrNull(r.last_activity),
  };
}

export function toCluster(r: Raw): ClusterRow {
  return {
    user: text(r.user),
    backend: text(r.backend),
    phase: text(r.phase) as ClusterPhase,
    workers: Number(r.workers),
    jupyterToken: text(r.jupyter_token),
    url: textOrNull(r.url),
    createdAt: text(r.created_at),
    readyAt: textOrNull(r.ready_at),
    lastActivity: textOrNull(r.last_activity),
  };
}

export function toToken(r: Raw): TokenRow {
  return {
    id: text(r.id),
    owner: text(r.owner),
    scopes: JSON.parse(text(r.scopes)) as string[],
    note: text(r.note),
    createdAt: text(r.created_at),
    expiresAt: textOrNull(r.expires_at),
    lastUsed: textOrNull(r.last_used),
  };
}

export function toEvent(r: Raw): EventRow {
  return {
    id: Number(r.id),
    time: text(r.time),
    actor: text(r.actor),
    user: text(r.user),
    kind: text(r.kind),
    detail: JSON.parse(text(r.detail)) as Record<string, unknown>,
  };
}

/** ClusterRow field → column, for partial updates. */
export const clusterColumns = {
  backend: 'backend',
  phase: 'phase',
  workers: 'workers',
  jupyterToken: 'jupyter_token',
  url: 'url',
  createdAt: 'created_at',
  readyAt: 'ready_at',
  lastActivity: 'last_activity',
} as const satisfies Record<keyof Omit<ClusterRow, 'user'>, string>;
