/**
 * Replies built from the store and the spawn manager, kept until either changes: a list of
 * 1,000 users costs one query and one JSON build per change, not per request, so a client
 * polling it does not hold up everyone else's requests. A kept reply is also gzipped, once,
 * for the clients that ask (browsers and Python's requests do): a page of 200 users is
 * ~110 KB of JSON and ~5 KB gzipped, and every byte is written by the hub and again by the proxy.
 */
import { constants, gzipSync } from 'node:zlib';
import type { SpawnManager } from '../../spawner/manager.ts';
import type { Store } from '../store/types.ts';

/** A finished reply: the JSON bytes, and what the route logs about it. */
export interface CachedReply<Note> {
  bytes: Buffer;
  note: Note;
  /** The same bytes gzipped (made on first demand): only for a kept reply of GZIP_MIN_BYTES or more. */
  gzipped?: () => Buffer;
}

/** Below this a reply goes as it is: gzip would save a few hundred bytes (one user's model is ~1 KB). */
const GZIP_MIN_BYTES = 1400;

/** Made once per kept reply; level 6 (zlib's default) is ~0.5 ms for a page of 200 users. */
function gzipOnce(bytes: Buffer): () => Buffer {
  let gz: Buffer | undefined;
  return () => (gz ??= gzipSync(bytes, { level: constants.Z_DEFAULT_COMPRESSION }));
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
    const bytes = Buffer.from(JSON.stringify(body));
    if (version === '') return { bytes, note };
    const reply = { bytes, note, ...(bytes.length >= GZIP_MIN_BYTES ? { gzipped: gzipOnce(bytes) } : {}) };
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, reply);
    return reply;
  }
}
