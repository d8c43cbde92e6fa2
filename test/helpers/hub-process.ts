/**
 * A whole hub in a process of its own (test/helpers/hub-child.ts), so a test can kill -9 it
 * at a chosen point and start the next one on the same state directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';

const CHILD = join(import.meta.dirname, 'hub-child.ts');

export interface HubProcess {
  child: ChildProcess;
  config: Config;
  publicUrl: string;
  /** Resolves once the hub logged that it is up (rejects if it exits first). */
  up: Promise<void>;
  /** Resolves with how it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Lines of the hub's JSON log so far. */
  lines: string[];
}

/**
 * Starts a hub process with `raw` config (state directory, ports and all: the caller picks
 * them, so a restart reuses them). `killAt` makes it SIGKILL itself before that request.
 */
export function startHubProcess(raw: Record<string, Record<string, unknown>>, options: { killAt?: string; logFile?: string } = {}): HubProcess {
  const config = parseConfig(raw, 'test');
  const file = join(config.hub.stateDir, `hub-config-${process.hrtime.bigint()}.json`);
  writeFileSync(file, JSON.stringify(raw), { mode: 0o600 });
  const child = spawn(process.execPath, [CHILD, file], {
    env: { ...process.env, ...(options.killAt ? { CLUSTERHUB_TEST_KILL_AT: options.killAt } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const up = new Promise<void>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        lines.push(line);
        log?.write(`${line}\n`);
        if (line.includes('"msg":"clusterhub is up"')) resolve();
      });
    }
    void exited.then(({ code, signal }) => reject(new Error(`the hub exited (code ${code}, signal ${signal}) before it was up:\n${lines.slice(-15).join('\n')}`)));
  });
  up.catch(() => {});
  void exited.then(() => log?.end());
  const publicUrl = `http://${config.hub.bind}:${config.hub.port}`;
  return { child, config, publicUrl, up, exited, lines };
}
