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
function run(cmd: string, args: string[], options: { capture?: boolean; timeoutMinutes?: number } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a hung run can be ended with everything it started.
    const child = spawn(cmd, args, { cwd: root, env, detached: options.timeoutMinutes !== undefined, stdio: ['ignore', options.capture ? 'pipe' : 'inherit', options.capture ? 'pipe' : 'inherit'] });
    // Ctrl-C or CI's stop reach the detached group too.
    const forward = (signal: NodeJS.Signals) => {
      try {
        process.kill(options.timeoutMinutes === undefined ? child.pid! : -child.pid!, signal);
      } catch {
        // already gone
      }
      process.exit(130);
    };
    process.once('SIGINT', forward);
    process.once('SIGTERM', forward);
    const watchdog = options.timeoutMinutes === undefined ? undefined : setTimeout(() => {
      process.stdout.write(`\n${cmd} ${args.join(' ')}: still running after ${options.timeoutMinutes} min; ending it (a hung test or a leaked process)\n`);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMinutes * 60_000);
    let output = '';
    const tee = (stream: NodeJS.WritableStream) => (chunk: Buffer) => {
      output += chunk.toString();
      stream.write(chunk);
    };
    child.stdout?.on('data', tee(process.stdout));
    child.stderr?.on('data', tee(process.stderr));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(watchdog);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({ code: code ?? 1, output });
    });
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
await must('Kubernetes test plane and real node binaries (built once per version, then reused)', 'bash', ['test/kube/build.sh', '--node']);
await must('images for the real node: Debian base (mmdebstrap), cluster and hub Dockerfiles (buildah); rebuilt when an input changed', 'bash', ['test/kube/images.sh']);

step('Chromium for the browser tests');
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(chromium)) {
  process.stdout.write(`Chromium is missing at ${chromium}: install it with 'apt-get install -y chromium' (or set CHROMIUM_PATH)\n0 passed, 1 failed\n`);
  process.exit(1);
}
process.stdout.write(`using ${chromium}\n`);

step('tests (ava)');
const files = process.argv.slice(2);
// Warm, the suite takes ~5 min; a run far past that is hung, and CI's own limit is 90 min.
const timeoutMinutes = Number(process.env.CLUSTERHUB_TEST_TIMEOUT_MINUTES ?? 30);
const { code, output } = await run(process.execPath, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.js'), ...files], { capture: true, timeoutMinutes });
// ava prints a ✔ or ✘ line per test; its summary omits the passed count when something failed.
const lines = (re: RegExp) => output.split('\n').filter((l) => re.test(l)).length;
const passed = lines(/^\s*✔/);
const failed = lines(/^\s*✘/) + Number(/(\d+) uncaught exceptions?/.exec(output)?.[1] ?? 0) + Number(/(\d+) unhandled rejections?/.exec(output)?.[1] ?? 0);
const skipped = lines(/^\s*- \[skip\]/) + lines(/^\s*- \[todo\]/);
const minutes = ((performance.now() - started) / 60000).toFixed(1);
process.stdout.write(`\nsuite finished in ${minutes} min\n`);
process.stdout.write(`ava: ${passed} passed, ${failed + (code !== 0 && failed === 0 ? 1 : 0)} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code);
