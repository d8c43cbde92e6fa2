/**
 * Paths in the configuration, made absolute once at load: the backends, child processes
 * and file URLs that receive them run in other working directories.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Config } from './schema.ts';

/** `p` against `cwd` unless it is absolute already. */
function absolute(p: string, cwd: string): string {
  return isAbsolute(p) ? p : resolve(cwd, p);
}

/** Git's own rule: a URL has a scheme, `host:path` is scp-like (no slash before the colon); the rest is a local path. */
export function isLocalGitPath(source: string): boolean {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(source)) return false;
  const colon = source.indexOf(':');
  return colon < 0 || source.slice(0, colon).includes('/');
}

/** The same configuration with every relative path key resolved against `cwd` (the hub's start directory). */
export function absolutePaths(config: Config, cwd: string): Config {
  const { hub, local, kubernetes } = config;
  const materials = local.materialsGitUrl;
  return {
    ...config,
    hub: { ...hub, stateDir: absolute(hub.stateDir, cwd) },
    local: {
      ...local,
      ...(local.venv !== undefined ? { venv: absolute(local.venv, cwd) } : {}),
      // A bare command (`python3`) is looked up on PATH; only a path is resolved.
      ...(local.python.includes('/') ? { python: absolute(local.python, cwd) } : {}),
      ...(materials && isLocalGitPath(materials) ? { materialsGitUrl: absolute(materials, cwd) } : {}),
    },
    kubernetes: {
      ...kubernetes,
      ...(kubernetes.kubeconfig !== undefined ? { kubeconfig: absolute(kubernetes.kubeconfig, cwd) } : {}),
    },
  };
}
