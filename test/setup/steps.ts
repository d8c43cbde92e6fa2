/**
 * The set-up steps of the README's test command, in order: toolchains (seconds), system
 * packages, type check, the clusters' virtualenv, JupyterHub's clients, the control-plane
 * and real-node binaries with the node's images, helm. Each prints a heading and its
 * progress; the first failure ends the run with one line saying why.
 */
import { join } from 'node:path';
import { BIN, runCommand } from './command.ts';
import { SetupError } from './setup-error.ts';
import { ensureSystemPackages } from './system-packages.ts';
import { checkToolchains } from './toolchains.ts';

const say = (line: string) => process.stdout.write(`${line}\n`);

function heading(title: string): void {
  say(`\n==> ${title}`);
}

/** Ends the run the way a failed suite ends, so CI's summary line still reads right. */
function fail(line: string): never {
  say(`\n${line}\n0 passed, 1 failed`);
  process.exit(1);
}

async function must(title: string, cmd: string, args: string[]): Promise<void> {
  heading(title);
  const { code } = await runCommand(cmd, args);
  if (code !== 0) fail(`${title}: failed (exit ${code})`);
}

async function inProcess(title: string, step: () => Promise<void>): Promise<void> {
  heading(title);
  try {
    await step();
  } catch (error) {
    if (error instanceof SetupError) fail(error.message);
    throw error;
  }
}

/** Runs every set-up step; returns when the machine is ready for ava. */
export async function setUp(): Promise<void> {
  await inProcess('toolchains (Go for the control plane, Python for the clusters)', async () => {
    for (const line of await checkToolchains()) say(line);
  });
  await inProcess('system packages (Debian; installed when missing and running as root)', () => ensureSystemPackages(say));
  await must('type check (tsc --noEmit)', join(BIN, 'tsc'), ['--noEmit', '-p', '.']);
  await must('Python environment for the clusters (built once, then reused)', process.execPath, ['spawner/local/venv.ts']);
  await must('JupyterHub clients from PyPI for the compatibility tests (built once, then reused)', process.execPath, ['test/python/clients.ts']);
  // Go builds are CPU-bound, the image builds mostly download: side by side they share the machine well.
  await all('Kubernetes test plane and real node binaries, and the real node\'s images (each built once per version or input, then reused)', [
    ['bash', ['test/kube/build.sh', '--node']],
    ['bash', ['test/kube/images.sh']],
  ]);
  await must('helm, for the chart tests (built once per version, then reused)', 'bash', ['test/kube/helm.sh']);
}

/** Runs commands side by side (their lines carry their own prefixes); fails if any failed. */
async function all(title: string, commands: Array<[string, string[]]>): Promise<void> {
  heading(title);
  const codes = await Promise.all(commands.map(([cmd, args]) => runCommand(cmd, args).then((r) => r.code)));
  const failed = commands.filter((_, i) => codes[i] !== 0).map(([cmd, args]) => `${cmd} ${args.join(' ')}`);
  if (failed.length > 0) fail(`${title}: failed (${failed.join('; ')})`);
}
