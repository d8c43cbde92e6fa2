#!/usr/bin/env node
/**
 * The `clusterhub` command: `start` (default) runs the hub, `token <login>` prints a new API
 * token, `check-config [file]` validates a configuration and names every bad key,
 * `remove-namespaces` deletes every student namespace of this hub (the chart's uninstall hook).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.ts';
import { saveCompileCache, setUpNodeRuntime } from './node-runtime.ts';

// Before anything else loads: what is imported after this comes from the compile cache.
setUpNodeRuntime();
const OPTIONS = {
  config: { type: 'string', short: 'c' }, note: { type: 'string' },
  help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' },
} as const;
/** The command the arguments name (undefined for --help, --version or arguments main() refuses). */
function commandOf(argv: string[]): string | undefined {
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
    return values.help || values.version ? undefined : positionals[0] ?? 'start';
  } catch {
    return undefined;
  }
}
// `start`: the managed proxy's process starts now and loads configurable-http-proxy while the
// hub reads its config (the hub sends its flags once known; with an external proxy it is killed).
const proxyProcess = commandOf(process.argv.slice(2)) === 'start' ? (await import('../proxy/chp-process.ts')).prestartChp() : undefined;
const { ConfigError, loadConfig } = await import('../config/load.ts');
const { openStore } = await import('./store/sqlite.ts');

const USAGE = `usage: clusterhub [start] [--config FILE]
       clusterhub token <login> [--config FILE] [--note TEXT]
       clusterhub check-config [FILE]
       clusterhub remove-namespaces [--config FILE]
       clusterhub --version | --help

The config file may also be given as CLUSTERHUB_CONFIG; every key can be overridden
by an environment variable (spawn.maxWorkers → CLUSTERHUB_SPAWN_MAX_WORKERS).`;

function configFrom(file: string | undefined): Config {
  return loadConfig({ file: file ?? process.env.CLUSTERHUB_CONFIG });
}

async function start(file: string | undefined): Promise<void> {
  const config = configFrom(file);
  // Signal handlers come first: a SIGTERM during start must still stop the proxy the hub started.
  const starting = new AbortController();
  let hub: Awaited<ReturnType<typeof import('./main.ts')['startHub']>> | undefined;
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    if (!hub) {
      process.stderr.write(`\n${signal} while starting: stopping what was started\n`);
      starting.abort(signal);
      return;
    }
    process.stderr.write(`\n${signal}: stopping the hub (clusters keep running and are found again at the next start)\n`);
    hub.close().then(() => process.exit(0), (err) => {
      process.stderr.write(`error while stopping: ${(err as Error).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  const { startHub } = await import('./main.ts');
  try {
    hub = await startHub(config, { signal: starting.signal, proxyProcess, onSetup: (line) => process.stderr.write(`[setup] ${line}\n`) });
    saveCompileCache();
  } catch (err) {
    if (!starting.signal.aborted) throw err;
    // startHub stopped everything it had started before rejecting.
    process.exit(0);
  }
  process.stderr.write(`\nclusterhub is running: open ${hub.publicUrl}\n(backend: ${config.spawn.backend}; stop with Ctrl-C)\n\n`);
}

function token(login: string | undefined, file: string | undefined, note: string | undefined): void {
  if (!login) throw new UsageError('token needs a login: clusterhub token <login>');
  const config = configFrom(file);
  mkdirSync(config.hub.stateDir, { recursive: true, mode: 0o700 });
  const store = openStore(join(config.hub.stateDir, 'clusterhub.sqlite'));
  try {
    const admin = config.auth.admins.includes(login);
    store.upsertUser({ login, admin });
    const { token: secret } = store.createToken(login, { scopes: admin ? ['user', 'admin'] : ['user'], note: note ?? 'created with clusterhub token' });
    store.addEvent({ actor: 'cli', user: login, kind: 'token-created', detail: { admin } });
    process.stdout.write(`${secret}\n`);
  } finally {
    store.close();
  }
}

/** Deletes the Kubernetes namespaces of this hub's instance, with the kubeconfig the hub would use. */
async function removeNamespaces(file: string | undefined): Promise<void> {
  const config = configFrom(file);
  const [{ kubeConfigOf }, { removeInstanceNamespaces }] = await Promise.all([import('./backends.ts'), import('../spawner/kubernetes/remove-namespaces.ts')]);
  const names = await removeInstanceNamespaces(await kubeConfigOf(config), config.kubernetes);
  process.stdout.write(`${names.length === 0 ? 'no namespaces' : `deleting ${names.join(', ')}`} (instance ${config.kubernetes.instance})\n`);
}

class UsageError extends Error {}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** One line on stderr and exit code 2: the operator typed something we do not know. */
function usageError(message: string): number {
  process.stderr.write(`clusterhub: ${message} (clusterhub --help lists the commands)\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    // parseArgs says e.g. "Unknown option '--frob'. To specify a positional argument…": its first sentence.
    const first = (err as Error).message.split('. ')[0]!.replace(/\.$/, '');
    return usageError(first.charAt(0).toLowerCase() + first.slice(1));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`clusterhub ${version()}\n`);
    return 0;
  }
  const [command = 'start', ...rest] = positionals;
  try {
    switch (command) {
      case 'start':
        await start(values.config);
        return -1;
      case 'token':
        token(rest[0], values.config, values.note);
        return 0;
      case 'check-config': {
        const config = configFrom(rest[0] ?? values.config);
        process.stdout.write(`configuration OK${rest[0] ?? values.config ? ` (${rest[0] ?? values.config})` : ''}\n`);
        return 0;
      }
      case 'remove-namespaces':
        await removeNamespaces(values.config);
        return 0;
      default:
        return usageError(`unknown command: ${command}`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError) return usageError(err.message);
    process.stderr.write(`clusterhub: ${(err as Error).message}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// -1: a server is running; it exits on a signal.
if (code >= 0) process.exit(code);
