/**
 * The whole test suite, as the README's test command runs it: the set-up steps (toolchains,
 * system packages, type check, the Python environment, the Kubernetes test plane), then the
 * entrypoint's Python tests (pytest) and ava; the summary line counts both.
 * Every step says what it does; a missing prerequisite fails with one line saying why.
 */
import { join } from 'node:path';
import { ROOT, runCommand } from './setup/command.ts';
import { setUp } from './setup/steps.ts';

/** pytest's counts from its last summary line, e.g. `==== 2 failed, 41 passed in 0.40s ====`. */
function pytestCounts(output: string): { passed: number; failed: number } {
  const summary = output.split('\n').filter((line) => /^=+ .* in [\d.]+s/.test(line)).at(-1) ?? '';
  const count = (re: RegExp) => Number(re.exec(summary)?.[1] ?? 0);
  return { passed: count(/(\d+) passed/), failed: count(/(\d+) failed/) + count(/(\d+) errors?/) };
}

const started = performance.now();
await setUp();

const files = process.argv.slice(2);
// pytest: all of images/cluster/tests with the full suite; with file arguments, only ava's.
const pytest = { passed: 0, failed: 0, code: 0 };
if (files.length === 0) {
  process.stdout.write('\n==> tests of the cluster entrypoint (pytest)\n');
  const run = await runCommand(process.execPath, [join(ROOT, 'test', 'pytest.ts')], { capture: true });
  Object.assign(pytest, pytestCounts(run.output));
  // A run that failed without a result line (pytest missing, a collection error) still counts.
  if (run.code !== 0 && pytest.failed === 0) pytest.failed = 1;
  pytest.code = run.code;
}

process.stdout.write('\n==> tests (ava)\n');
// Warm, the suite takes ~15–25 min (real pods, real clusters, a browser); a run far past
// that is hung, and CI's own limit is 90 min.
const timeoutMinutes = Number(process.env.CLUSTERHUB_TEST_TIMEOUT_MINUTES ?? 60);
const { code, output } = await runCommand(process.execPath, [join(ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.js'), ...files], { capture: true, timeoutMinutes });
// ava prints a ✔ or ✘ line per test; its summary omits the passed count when something failed.
const lines = (re: RegExp) => output.split('\n').filter((l) => re.test(l)).length;
const passed = lines(/^\s*✔/);
const failed = lines(/^\s*✘/) + Number(/(\d+) uncaught exceptions?/.exec(output)?.[1] ?? 0) + Number(/(\d+) unhandled rejections?/.exec(output)?.[1] ?? 0);
const skipped = lines(/^\s*- \[skip\]/) + lines(/^\s*- \[todo\]/);
const avaFailed = failed + (code !== 0 && failed === 0 ? 1 : 0);
const minutes = ((performance.now() - started) / 60000).toFixed(1);
process.stdout.write(`\nsuite finished in ${minutes} min\n`);
const parts = `ava ${passed}/${passed + avaFailed}${files.length === 0 ? `, pytest ${pytest.passed}/${pytest.passed + pytest.failed}` : ''}`;
process.stdout.write(`${passed + pytest.passed} passed, ${avaFailed + pytest.failed} failed${skipped ? `, ${skipped} skipped` : ''} (${parts})\n`);
process.exit(code !== 0 ? code : pytest.code);
