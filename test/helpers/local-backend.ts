/**
 * Test support for the local backend (used by its unit, contract and integration tests):
 * a backend on a fresh state dir, and a look at which processes still belong to a cluster.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/schema.ts';
import { silentLogger } from '../../shared/log.ts';
import { LocalBackend, type LocalBackendOptions } from '../../spawner/local/backend.ts';
import { clusterPaths } from '../../spawner/local/state.ts';
import { ensureVenv, REQUIREMENTS_FILE } from '../../spawner/local/venv.ts';

/** The defaults of config/schema.ts for `local`, overridable per test. */
export function localConfig(overrides: Partial<Config['local']> = {}): Config['local'] {
  return { python: 'python3', workerThreads: 1, workerMemory: '1GiB', enginesPerWorker: 1, spark: 'auto', userPrefix: 'clusterhub-', sharedAccount: false, ...overrides };
}

/**
 * A LocalBackend on a temporary state dir (`cleanup` removes it), or on a given one
 * (a second hub process on the same state, as after a restart; left in place).
 */
export async function makeLocalBackend(options: { config?: Partial<Config['local']>; stateDir?: string; extra?: Partial<LocalBackendOptions> } = {}) {
  const config = localConfig(options.config);
  const venv = await ensureVenv({ python: config.python, requirementsFile: REQUIREMENTS_FILE, log: (line) => console.error(line) });
  const stateDir = options.stateDir ?? await mkdtemp(join(tmpdir(), 'clusterhub-local-'));
  const backend = new LocalBackend({ config, stateDir, venvBin: venv.bin, log: silentLogger(), ...options.extra });
  return {
    backend,
    stateDir,
    cleanup: async () => {
      await backend.close();
      if (!options.stateDir) await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * Processes that belong to a user's cluster, found by the CLUSTER_RUNTIME_DIR every one
 * of them inherits (kernels included, even ones that left the process group).
 */
export async function clusterProcesses(stateDir: string, user: string): Promise<string[]> {
  const marker = `CLUSTER_RUNTIME_DIR=${clusterPaths(stateDir, user).runtimeDir}\0`;
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    if (!environ.includes(marker)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline) found.push(`${entry}: ${cmdline.replaceAll('\0', ' ').slice(0, 120)}`);
  }
  return found;
}

/** A random Jupyter token, for a test that starts a cluster without the manager. */
export function newJupyterToken(): string {
  return randomBytes(24).toString('hex');
}
