/** The Store contract: users, clusters, API tokens (hashed at rest) and events. */
import type { ClusterRow } from '../../spawner/manager.ts';

export interface UserRow {
  login: string;
  githubId: number | null;
  admin: boolean;
  createdAt: string;
  lastSeen: string | null;
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
  upsertUser(user: { login: string; githubId?: number | null; admin?: boolean }): UserRow;
  getUser(login: string): UserRow | undefined;
  listUsers(): UserRow[];
  /** Forget a user with their cluster row and tokens (events stay, for the record). */
  deleteUser(login: string): void;
  touchUser(login: string, when?: Date): void;

  putCluster(row: ClusterRow): void;
  updateCluster(user: string, patch: Partial<Omit<ClusterRow, 'user'>>): void;
  getCluster(user: string): ClusterRow | undefined;
  listClusters(): ClusterRow[];
  deleteCluster(user: string): void;

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

  close(): void;
}
