/**
 * Side-by-side benchmarks against the peers, installed from PyPI into a cached venv.
 *
 *   npm run bench -- hub  [--rounds 3] [--users 1000] [--concurrent 100] [--load-seconds 10]
 *                         [--only list|start] [--hub clusterhub|JupyterHub]
 *     --only list: only the list and single-user reads (after the concurrent launches that
 *     make their page); --only start: only start → API ready (each round one fresh start,
 *     nothing else); --hub: one hub's rounds only (the other is not seeded with --only start).
 *     These are for iterating, not for the table.
 *   npm run bench -- kube [--rounds 3] [--users 100] [--spawn-concurrency N] [--api-concurrency N]
 *
 * Prints one table of medians and ratios, and the machine's load average for each round.
 * Not a test: numbers depend on the machine; nothing here passes or fails.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cacheDir, ensureVenv } from '../spawner/local/venv.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '3' },
    users: { type: 'string' },
    concurrent: { type: 'string', default: '100' },
    'load-seconds': { type: 'string', default: '10' },
    'spawn-concurrency': { type: 'string' },
    'api-concurrency': { type: 'string' },
    only: { type: 'string' },
    hub: { type: 'string' },
  },
});
const which = positionals[0];
if (which !== 'hub' && which !== 'kube') {
  process.stderr.write('usage: npm run bench -- hub|kube [--rounds N] [--users N]\n');
  process.exit(2);
}
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const requirementsFile = join(import.meta.dirname, 'peer', 'requirements.txt');
const hash = createHash('sha256').update(readFileSync(requirementsFile)).digest('hex').slice(0, 12);
const venv = await ensureVenv({ python: 'python3', venvDir: join(cacheDir(), `peer-${hash}`), requirementsFile, log });

if (values.only !== undefined && values.only !== 'list' && values.only !== 'start') {
  process.stderr.write('--only takes: list or start\n');
  process.exit(2);
}
if (values.hub !== undefined && values.hub !== 'clusterhub' && values.hub !== 'JupyterHub') {
  process.stderr.write('--hub takes: clusterhub or JupyterHub\n');
  process.exit(2);
}
if (which === 'hub') {
  const { hubBench } = await import('./side-by-side/hub-bench.ts');
  const table = await hubBench({
    rounds: Number(values.rounds), users: Number(values.users ?? 1000), concurrent: Number(values.concurrent),
    loadSeconds: Number(values['load-seconds']), venvBin: venv.bin, log,
    only: values.only as 'list' | 'start' | undefined, hub: values.hub as 'clusterhub' | 'JupyterHub' | undefined,
  });
  process.stdout.write(`${table}\n`);
} else {
  const { kubeBench } = await import('./side-by-side/kube-bench.ts');
  const optional = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  process.stdout.write(`${await kubeBench({
    rounds: Number(values.rounds), users: Number(values.users ?? 100), venvBin: venv.bin, log,
    spawnConcurrency: optional(values['spawn-concurrency']), apiConcurrency: optional(values['api-concurrency']),
  })}\n`);
}
