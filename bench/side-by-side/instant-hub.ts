/**
 * clusterhub as the hub benchmark runs it: the real hub (managed CHP, sqlite, info logs to
 * stdout) with a backend that is ready at once, so only hub and proxy work is measured.
 *
 *   node bench/side-by-side/instant-hub.ts CONFIG.yaml   (BENCH_TARGET_URL: the shared target)
 */
import { saveCompileCache, setUpNodeRuntime } from '../../hub/node-runtime.ts';
import type { Backend, ClusterListing, ClusterStatus, ProgressEvent, StartOptions } from '../../spawner/types.ts';

/** Every cluster is the one shared HTTP target; state lives in memory only. */
class InstantBackend implements Backend {
  readonly kind = 'instant';
  readonly #clusters = new Map<string, { workers: number; token: string }>();
  readonly #url: string;
  constructor(url: string) {
    this.#url = url;
  }
  async *start(user: string, options: StartOptions): AsyncIterable<ProgressEvent> {
    this.#clusters.set(user, { workers: options.workers, token: options.jupyterToken });
    yield { progress: 100, message: 'ready', ready: true, url: this.#url };
  }
  async stop(user: string): Promise<void> {
    this.#clusters.delete(user);
  }
  async status(user: string): Promise<ClusterStatus> {
    const c = this.#clusters.get(user);
    return c ? { state: 'running', workers: c.workers } : { state: 'stopped' };
  }
  async scale(user: string, workers: number): Promise<void> {
    const c = this.#clusters.get(user);
    if (c) c.workers = workers;
  }
  async list(): Promise<ClusterListing[]> {
    return [...this.#clusters].map(([user, c]) => ({ user, state: 'running' as const, workers: c.workers, url: this.#url, jupyterToken: c.token }));
  }
}

const file = process.argv[2];
const target = process.env.BENCH_TARGET_URL;
if (!file || !target) {
  process.stderr.write('usage: BENCH_TARGET_URL=http://127.0.0.1:PORT node bench/side-by-side/instant-hub.ts CONFIG.yaml\n');
  process.exit(2);
}
// As hub/cli.ts starts: the Node set-up first, then the hub's modules.
setUpNodeRuntime();
const { prestartChp } = await import('../../proxy/chp-process.ts');
const proxyProcess = prestartChp();
const [{ loadConfig }, { startHub }] = await Promise.all([import('../../config/load.ts'), import('../../hub/main.ts')]);
const hub = await startHub(loadConfig({ file }), { backend: new InstantBackend(target), proxyProcess });
saveCompileCache();
const stop = () => hub.close().then(() => process.exit(0), () => process.exit(1));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
