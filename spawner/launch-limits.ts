/** The two limits of a launch: its time in line, and its start timeout once the backend began. */
import type { Launch } from './launch-progress.ts';
import { ClusterError } from './types.ts';

/** Rejects with the signal's reason once it aborts. */
export function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Throws the reason of an aborted launch: the timeout in words, or the cancellation. */
export function throwIfAborted(signal: AbortSignal, timeout: AbortSignal, timeoutMs: number, launch: Launch): void {
  if (!signal.aborted) return;
  if (timeout.aborted) throw new ClusterError(timeoutMessage(timeoutMs, launch), 504);
  throw signal.reason instanceof Error ? signal.reason : new ClusterError(String(signal.reason));
}

/** The timeout, the last step, and what the backend was struggling with when time ran out. */
export function timeoutMessage(timeoutMs: number, launch: Launch, cause?: unknown): string {
  const trouble = cause instanceof ClusterError ? `: ${cause.message}` : '';
  return `the cluster was not ready after ${Math.round(timeoutMs / 1000)} s (last step: ${launch.lastMessage || 'none'})${trouble}`;
}

/** Why a launch left the line without a slot. */
export function queueMessage(limitMs: number, position: number): string {
  return `no launch slot became free within ${Math.round(limitMs / 1000)} s (still at position ${position} in line); the hub is busy, launch again in a few minutes`;
}
