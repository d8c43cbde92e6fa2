import { CoreV1Api, makeInformer, Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';

/** Options for {@link watchUntil}. */
export interface WatchUntilOptions {
  /** What is awaited, for the timeout message. */
  what: string;
  timeoutMs: number;
  /** Ends the watch early: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Watches `path` (a collection, e.g. `/api/v1/namespaces/x/pods`) until `test` returns a
 * value other than undefined for some event, and resolves with that value. The watch starts
 * without a resourceVersion, so the server first replays the current objects as ADDED:
 * a condition that already holds is seen at once, with no list/watch race. A watch the
 * server closes is reopened; on timeout the last watch error is part of the message.
 */
export function watchUntil<T>(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  test: (phase: string, obj: any) => T | undefined,
  opts: WatchUntilOptions,
): Promise<T> {
  const watch = new Watch(kc);
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let controller: AbortController | undefined;
    let lastError: unknown;
    let reopen: NodeJS.Timeout | undefined;

    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(reopen);
      controller?.abort();
      settle();
    };
    const timer = setTimeout(() => {
      const cause = lastError ? `; last watch error: ${String((lastError as Error).message ?? lastError)}` : '';
      finish(() => reject(new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${cause}`)));
    }, opts.timeoutMs);
    opts.signal?.addEventListener('abort', () => finish(() => reject(opts.signal!.reason)), { once: true });

    const open = () => {
      watch
        .watch(
          path,
          query,
          (phase, obj) => {
            if (settled) return;
            if (phase === 'ERROR') {
              lastError = new Error(obj?.message ?? JSON.stringify(obj));
              return;
            }
            let value: T | undefined;
            try {
              value = test(phase, obj);
            } catch (error) {
              finish(() => reject(error));
              return;
            }
            if (value !== undefined) finish(() => resolve(value));
          },
          (error) => {
            if (settled) return;
            if (error) lastError = error;
            // Reopen after a beat so a server that refuses us does not spin the CPU.
            reopen = setTimeout(open, error ? 500 : 0);
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (error) => {
            lastError = error;
            if (!settled) reopen = setTimeout(open, 500);
          },
        );
    };
    open();
  });
}

/**
 * Keeps an informer on the pods of `namespace` (optionally filtered by `labelSelector`)
 * until `done(pods)` holds for the cached set, and resolves with that set. An informer that
 * fails is restarted, as client-node leaves that to the caller.
 */
export async function waitForPods(
  kc: KubeConfig,
  namespace: string,
  labelSelector: string | undefined,
  done: (pods: readonly V1Pod[]) => boolean,
  opts: WatchUntilOptions,
): Promise<readonly V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Pod>(
    kc,
    `/api/v1/namespaces/${namespace}/pods`,
    () => core.listNamespacedPod({ namespace, labelSelector }),
    labelSelector,
  );
  let restart: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  // start() resolves only once its watch is open; stopping before that would leak the watch.
  let starting: Promise<void> = Promise.resolve();
  try {
    return await new Promise<readonly V1Pod[]>((resolve, reject) => {
      let lastError: unknown;
      const check = () => {
        const pods = informer.list();
        if (done(pods)) resolve(pods);
      };
      const start = () => {
        starting = informer.start().then(check, (error) => {
          lastError = error;
        });
      };
      for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, check);
      informer.on('error', (error) => {
        lastError = error;
        if (!finished) restart = setTimeout(start, 500);
      });
      timer = setTimeout(() => {
        const cause = lastError ? `; last informer error: ${String(lastError)}` : '';
        reject(new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${cause}`));
      }, opts.timeoutMs);
      start();
    });
  } finally {
    finished = true;
    clearTimeout(timer);
    clearTimeout(restart);
    await starting;
    await informer.stop();
  }
}
