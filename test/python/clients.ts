/**
 * The Python environment with JupyterHub's own clients (jupyterhub-idle-culler, and
 * jupyterhub for `HubAuth`), built once from test/python/requirements.txt into
 * `~/.cache/clusterhub/pyclients-{hash}` (or under `CLUSTERHUB_CACHE`) and reused, with the same cross-process lock as the
 * clusters' virtualenv.
 *
 * CLI: `node test/python/clients.ts` builds it and prints its bin dir (a set-up step of `npm test`).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, ensureVenv } from '../../spawner/local/venv.ts';

export const CLIENT_REQUIREMENTS = resolve(import.meta.dirname, 'requirements.txt');

/** Where the client environment lives (a new requirements file, a new environment). */
export function clientVenvDir(): string {
  const hash = createHash('sha256').update(readFileSync(CLIENT_REQUIREMENTS)).digest('hex').slice(0, 12);
  return join(cacheDir(), `pyclients-${hash}`);
}

/** Builds the environment if needed; resolves with its bin directory. */
export async function clientBin(log: (line: string) => void = () => {}): Promise<string> {
  const venv = await ensureVenv({ python: process.env.CLUSTERHUB_PYTHON ?? 'python3', venvDir: clientVenvDir(), requirementsFile: CLIENT_REQUIREMENTS, log });
  return venv.bin;
}

/** What a finished Python process printed. */
export interface PythonRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `python -c script` from the client environment with `env` added; rejects past `timeoutMs`. */
export async function runPython(script: string, env: Record<string, string>, timeoutMs = 120_000): Promise<PythonRun> {
  const bin = await clientBin();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(join(bin, 'python'), ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`python did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  clientBin((line) => console.error(line)).then(
    (bin) => console.log(bin),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
