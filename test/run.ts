/**
 * The whole test suite, as the README's test command runs it: the set-up steps (toolchains,
 * system packages, type check, the Python environment, the Kubernetes test plane), then ava.
 * Every step says what it does; a missing prerequisite fails with one line saying why.
 */
import { join } from 'node:path';
import { ROOT, runCommand } from './setup/command.ts';
import { setUp } from './setup/steps.ts';

const started = performance.now();
await setUp();

process.stdout.write('\n==> tests (ava)\n');
const files = process.argv.slice(2);
// Warm, the suite takes ~15–25 min (real pods, real clusters, a browser); a run far past
// that is hung, and CI's own limit is 90 min.
const timeoutMinutes = Number(process.env.CLUSTERHUB_TEST_TIMEOUT_MINUTES ?? 60);
const { code, output } = await runCommand(process.execPath, [join(ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.js'), ...files], { capture: true, timeoutMinutes });
// ava prints a ✔ or ✘ line per test; its summary omits the passed count when something failed.
const lines = (re: RegExp) => output.split('\n').filter((l) => re.test(l)).length;
const passed = lines(/^\s*✔/);
const failed = lines(/^\s*✘/) + Number(/(\d+) uncaught exceptions?/.exec(output)?.[1] ?? 0) + Number(/(\d+) unhandled rejections?/.exec(output)?.[1] ?? 0);
const skipped = lines(/^\s*- \[skip\]/) + lines(/^\s*- \[todo\]/);
const minutes = ((performance.now() - started) / 60000).toFixed(1);
process.stdout.write(`\nsuite finished in ${minutes} min\n`);
process.stdout.write(`ava: ${passed} passed, ${failed + (code !== 0 && failed === 0 ? 1 : 0)} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code);
