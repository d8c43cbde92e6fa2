/**
 * Replies built from the store and the spawn manager, kept until either changes: a list of
 * 1,000 users costs one query and one JSON build per change, not per request, so a client
 * polling it does not hold up everyone else's requests.
 */
import type { SpawnManager } from '../../spawner/manager.ts';
import type { Store } from '../store/types.ts';

/** A finished reply: the JSON bytes, and what the route logs about it. */
export interface CachedReply<Note> {
  bytes: Buffer;
  note: Note;
}

/** Replies by key, all dropped together when the store or the manager moves on. */
export class ReplyCache<Note = undefined> {
  readonly #store: Store;
  readonly #manager: SpawnManager;
  readonly #maxEntries: number;
  #version = '';
  readonly #entries = new Map<string, CachedReply<Note>>();

  /** `maxEntries` bounds memory against clients that vary their queries. */
  constructor(store: Store, manager: SpawnManager, maxEntries: number) {
    this.#store = store;
    this.#manager = manager;
    this.#maxEntries = maxEntries;
  }

  /** The reply for `key`: the kept one while nothing changed, else `build()`'s, serialised once. */
  get(key: string, build: () => { body: unknown; note: Note }): CachedReply<Note> {
    // Launches and stops in flight change views (queue positions) without a write: no reuse.
    const version = this.#manager.busyUsers().length > 0 ? '' : `${this.#store.version()}/${this.#manager.generation()}`;
    if (version !== this.#version) {
      this.#entries.clear();
      this.#version = version;
    }
    const kept = version === '' ? undefined : this.#entries.get(key);
    if (kept) return kept;
    const { body, note } = build();
    const reply = { bytes: Buffer.from(JSON.stringify(body)), note };
    if (version === '') return reply;
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, reply);
    return reply;
  }
}
