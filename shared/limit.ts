/**
 * Bounded concurrency for work over many clusters or routes (a culler sweep, a route
 * sync): a class of 1,000 does not open 1,000 connections to an API at once.
 */

/**
 * Calls `fn` on every item with at most `limit` calls in flight; resolves when all have
 * settled. `fn` is expected to handle its own errors (one failure must not stop the rest);
 * a rejection is still contained and reported through `onError`.
 */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  onError: (item: T, err: unknown) => void = () => {},
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        onError(item, err);
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  await Promise.all(workers);
}
