/**
 * The whole test suite, as the README's test command runs it: type check, then what the
 * tests need (the Python environment, the Kubernetes test plane, Chromium), then ava.
 * Every step says what it does; a missing prerequisite fails loudly.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'node_modules', '.bin');
const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };

function step(title: string): void {
  process.stdout.write(`\n==> ${title}\n`);
}

/** Runs a command with inherited output; resolves with its exit code and what it printed. */
function run(cmd: string, args: string[], options: { capture?: boolean } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', options.capture ? 'pipe' : 'inherit', options.capture ? 'pipe' : 'inherit'] });
    let output = '';
    const tee = (stream: NodeJS.WritableStream) => (chunk: Buffer) => {
      output += chunk.toString();
      stream.write(chunk);
    };
    child.stdout?.on('data', tee(process.stdout));
    child.stderr?.on('data', tee(process.stderr));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

async function must(title: string, cmd: string, args: string[]): Promise<void> {
  step(title);
  const { code } = await run(cmd, args);
  if (code !== 0) {
    process.stdout.write(`\n${title}: failed (exit ${code})\n0 passed, 1 failed\n`);
    process.exit(1);
  }
}

const started = performance.now();
await must('type check (tsc --noEmit)', join(bin, 'tsc'), ['--noEmit', '-p', '.']);
await must('Python environment for the clusters (built once, then reused)', process.execPath, ['spawner/local/venv.ts']);
await must('Kubernetes test plane binaries (built once per version, then reused)', 'bash', ['test/kube/build.sh']);

step('Chromium for the browser tests');
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(chromium)) {
  process.stdout.write(`Chromium is missing at ${chromium}: install it with 'apt-get install -y chromium' (or set CHROMIUM_PATH)\n0 passed, 1 failed\n`);
  process.exit(1);
}
process.stdout.write(`using ${chromium}\n`);

step('tests (ava)');
const files = process.argv.slice(2);
const { code, output } = await run(process.execPath, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.js'), ...files], { capture: true });
// ava prints a ✔ or ✘ line per test; its summary omits the passed count when something failed.
const lines = (re: RegExp) => output.split('\n').filter((l) => re.test(l)).length;
const passed = lines(/^\s*✔/);
const failed = lines(/^\s*✘/) + Number(/(\d+) uncaught exceptions?/.exec(output)?.[1] ?? 0) + Number(/(\d+) unhandled rejections?/.exec(output)?.[1] ?? 0);
const skipped = lines(/^\s*- \[skip\]/) + lines(/^\s*- \[todo\]/);
const minutes = ((performance.now() - started) / 60000).toFixed(1);
process.stdout.write(`\nsuite finished in ${minutes} min\n`);
process.stdout.write(`ava: ${passed} passed, ${failed + (code !== 0 && failed === 0 ? 1 : 0)} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code);
