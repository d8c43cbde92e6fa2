/**
 * The class's event log: the kinds of event the hub records (who did what to whom, when),
 * and their retention — events older than `hub.eventRetentionDays` are removed at start and
 * then daily.
 */
import type { Logger } from '../shared/log.ts';
import type { Store } from './store/types.ts';

/** Every kind of event, with the words the console shows for it. */
export const EVENT_KINDS = {
  'sign-in': 'signed in',
  launch: 'launch',
  ready: 'ready',
  'launch-failed': 'launch failed',
  scale: 'scaled',
  stop: 'stopped',
  culled: 'culled',
  reset: 'reset',
  lost: 'lost (stopped unexpectedly)',
  'user-added': 'added to the class',
  'user-deleted': 'removed from the class',
  'instructor-added': 'made an instructor',
  'instructor-removed': 'no longer an instructor',
  'token-created': 'API token created',
  'signed-out': 'signed out everywhere',
} as const;
export type EventKind = keyof typeof EVENT_KINDS;

/** True when `kind` is one the hub records. */
export function isEventKind(kind: string): kind is EventKind {
  return Object.hasOwn(EVENT_KINDS, kind);
}

const DAY_MS = 24 * 3600 * 1000;

/** Removes expired events now and every day after; returns the function that stops it. */
export function keepEventsFor(store: Store, retentionDays: number, log: Logger): () => void {
  const prune = () => {
    const removed = store.pruneEvents(new Date(Date.now() - retentionDays * DAY_MS));
    if (removed > 0) log.info({ removed, retentionDays }, 'removed events past their retention');
  };
  prune();
  const timer = setInterval(() => {
    try {
      prune();
    } catch (err) {
      log.error({ err }, 'event retention sweep failed');
    }
  }, DAY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
