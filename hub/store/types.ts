/** The Store contract: users, clusters, API tokens (hashed at rest) and events. */
import type { ClusterRow } from '../../spawner/records.ts';

export interface UserRow {
  login: string;
  githubId: number | null;
  /** Admin (instructor) rights now: in `auth.admins`, or made an instructor in the console. */
  admin: boolean;
  /** Made an instructor in the console (kept across restarts, unlike a removed `auth.admins` entry). */
  instructor: boolean;
  /** Who put this login on the roster; null when the user came in by signing in. */
  addedBy: string | null;
  createdAt: string;
  lastSeen: string | null;
  /** The latest activity seen on the user's cluster (the user's own requests are `lastSeen`). */
  lastActivity: string | null;
}

/** One user with their cluster, as a paged list shows it (one query per page). */
export interface UserListing extends UserRow {
  cluster: ClusterRow | null;
  /** How often the culler stopped this user's cluster (within event retention). */
  culls: number;
  lastEvent: { time: string; kind: string; actor: string; detail: Record<string, unknown> } | null;
}

/** Sort keys of a user list (JupyterHub's `id`, `name`, `last_activity`, and the console's). */
export const USER_SORTS = ['id', 'name', 'last_activity', 'state', 'workers', 'launched', 'culls', 'instructor'] as const;
export type UserSort = (typeof USER_SORTS)[number];

/** A page of users: JupyterHub's `state` filter, a name filter, a sort, offset and limit. */
export interface UserQuery {
  /** active: has a cluster (pending or running); ready: a running one; inactive: none. */
  state?: 'active' | 'ready' | 'inactive';
  /** Substring of the login, case-insensitive. */
  nameFilter?: string;
  sort?: UserSort;
  descending?: boolean;
  offset: number;
  limit: number;
}

/** A page of events, newest first. */
export interface EventQuery {
  user?: string;
  kind?: string;
  offset: number;
  limit: number;
}

/** A user's cluster as the hub records it: the spawn manager's row (one definition). */
export type { ClusterRow };
/** Where a user's cluster is in its life: starting, running, stopping. */
export type ClusterPhase = ClusterRow['phase'];

export interface TokenRow {
  id: string;
  owner: string;
  scopes: string[];
  note: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsed: string | null;
}

export interface EventRow {
  id: number;
  time: string;
  /** Who did it: a login, `culler`, `hub`. */
  actor: string;
  /** Whose cluster or account it concerns. */
  user: string;
  kind: string;
  detail: Record<string, unknown>;
}

export interface Store {
  upsertUser(user: { login: string; githubId?: number | null; admin?: boolean; instructor?: boolean; addedBy?: string }): UserRow;
  getUser(login: string): UserRow | undefined;
  listUsers(): UserRow[];
  /** Forget a user with their cluster row and tokens (events stay, for the record). */
  deleteUser(login: string): void;
  touchUser(login: string, when?: Date): void;

  putCluster(row: ClusterRow): void;
  updateCluster(user: string, patch: Partial<Omit<ClusterRow, 'user'>>): void;
  getCluster(user: string): ClusterRow | undefined;
  listClusters(): ClusterRow[];
  /** How many clusters are in `phase` (an indexed count). */
  countClusters(phase: ClusterRow['phase']): number;
  deleteCluster(user: string): void;
  /** Runs `fn`'s writes as one commit; a call inside another joins it. A throw rolls all of them back. */
  atomically<T>(fn: () => T): T;

  /** Create a token; the secret is returned once and only its hash is kept. */
  createToken(owner: string, options: { scopes: string[]; note?: string; expiresAt?: Date | null }): { token: string; row: TokenRow };
  /** The token's row if the secret is valid and not expired (marks it used). */
  findToken(secret: string): TokenRow | undefined;
  listTokens(owner?: string): TokenRow[];
  deleteToken(id: string): boolean;

  /** A live session's data by its cookie key (expired ones are gone). */
  getSession(key: string): Record<string, unknown> | undefined;
  /** Create or replace a session; `login` is who it signs in (null before sign-in). */
  putSession(key: string, data: Record<string, unknown>, login: string | null, expiresAt: Date): void;
  deleteSession(key: string): void;
  /** End every session and token of `login` (sign out everywhere); returns how many of each. */
  revokeAccess(login: string): { sessions: number; tokens: number };

  addEvent(event: { actor: string; user: string; kind: string; detail?: Record<string, unknown>; time?: Date }): EventRow;
  listEvents(filter?: { user?: string; kind?: string; limit?: number }): EventRow[];
  /** One page of users with their clusters and the total that match (one prepared query). */
  userPage(query: UserQuery): { rows: UserListing[]; total: number };
  /** One user as a list shows them. */
  userListing(login: string): UserListing | undefined;
  /** One page of events, newest first, and how many match. */
  eventPage(query: EventQuery): { rows: EventRow[]; total: number };
  /** Forget events older than `before`; returns how many went. */
  pruneEvents(before: Date): number;
  /** Moves the cluster's and the user's last activity forward to `when` (never back). */
  recordActivity(user: string, when: Date): void;
  /**
   * Changes whenever the database may have changed: a write through this store or a commit
   * by another process (`clusterhub token` while the hub runs). Equal values: same content.
   */
  version(): string;

  close(): void;
}
