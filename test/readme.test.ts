/**
 * The README as a newcomer runs it: a fresh copy of the repository, `npm start` there with
 * the default configuration (the relative ./state; only the ports moved to free ones), then
 * in Chromium: dev sign-in, Launch, the progress bar, a JupyterLab with no dialog and no
 * prompt, a notebook whose `Client()` sees the workers, Stop; and nothing left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import test from 'ava';
import type { Page } from 'playwright-core';
import { launchBrowser } from './helpers/browser.ts';
import { freshCopy, killProcessesUnder, processesUnder, REPO, removeCopy } from './helpers/fresh-copy.ts';
import { adjacentPorts } from './helpers/hub.ts';
import { freePort, waitUntil } from './helpers/net.ts';

const STUDENT = 'newcomer';
const CODE = "from dask.distributed import Client; c = Client(); print(len(c.scheduler_info()['workers']))";

/** A shell of someone who just cloned the repository: none of our settings, our npm run or our PATH. */
function newcomerEnv(ports: Record<string, number>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('CLUSTERHUB_') && !/^npm_/i.test(key) && key !== 'INIT_CWD') env[key] = value;
  }
  env.PATH = (env.PATH ?? '').split(delimiter).filter((p) => !p.startsWith(REPO)).join(delimiter);
  for (const [key, port] of Object.entries(ports)) env[key] = String(port);
  return env;
}

/** `npm start` in `dir`, its own process group; resolves with the URL the hub prints. */
function npmStart(dir: string, env: NodeJS.ProcessEnv) {
  const child = spawn('npm', ['start'], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /clusterhub is running: open (\S+)/.exec(output);
      if (m) resolve(m[1]!);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then((code) => reject(new Error(`npm start exited (${code}) before the hub ran:\n${output.slice(-3000)}`)));
  });
  return { child, running, exited, output: () => output };
}

/** What JupyterLab shows on top of the work: modal dialogs and toast notifications. */
async function interruptions(page: Page): Promise<string[]> {
  return page.locator('.jp-Dialog, .Toastify__toast').allTextContents();
}

function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  try {
    if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

test('the README start command, as written, gives a newcomer a clean JupyterLab whose Client() sees the workers', async (t) => {
  const dir = await freshCopy();
  let hub: ReturnType<typeof npmStart> | undefined;
  t.teardown(async () => {
    killGroup(hub?.child, 'SIGKILL');
    // Clusters are process groups of their own: whatever still runs from the copy goes.
    await killProcessesUnder(dir);
    await killProcessesUnder(dir);
    await removeCopy(dir);
  });
  const port = await adjacentPorts();
  hub = npmStart(dir, newcomerEnv({ CLUSTERHUB_HUB_PORT: port, CLUSTERHUB_HUB_HUB_PORT: await freePort() }));
  const url = await hub.running;
  t.is(url, `http://127.0.0.1:${port}`);
  t.true(existsSync(join(dir, 'state', 'clusterhub.sqlite')), 'the default ./state is in the folder npm start ran in');

  const browser = await launchBrowser();
  t.teardown(() => browser.cleanup());
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await page.waitForURL(/\/hub\/login/);
    await page.getByLabel('GitHub login').fill(STUDENT);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/hub\/home$/);
    t.is(await page.locator('#state').textContent(), 'stopped');

    // The progress bar's values as the page sets them (browser-side code as a string: no DOM types here).
    const seen: number[] = [];
    await page.exposeFunction('recordProgress', (value: number) => seen.push(value));
    await page.evaluate(`(() => {
      const bar = document.getElementById('bar');
      const native = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
      Object.defineProperty(bar, 'value', { get: () => native.get.call(bar), set: (v) => { window.recordProgress(v); native.set.call(bar, v); } });
    })()`);
    const launched = performance.now();
    await page.getByRole('button', { name: 'Launch' }).click();
    // As long as the hub itself waits (spawn.startTimeoutSeconds): a slow machine is not a failure.
    await page.waitForURL(new RegExp(`/user/${STUDENT}/lab`), { timeout: 300_000 });
    // JupyterLab's own signal that it has restored: the splash is gone and the launcher is there.
    await page.locator('.jp-Launcher').waitFor({ timeout: 90_000 });
    await page.locator('#jupyterlab-splash').waitFor({ state: 'detached' });
    t.log(`Launch → usable JupyterLab: ${((performance.now() - launched) / 1000).toFixed(1)} s`);
    t.true(new Set(seen).size >= 3 && seen.at(-1) === 100, `the progress bar moved to 100: ${seen.join(', ')}`);
    t.deepEqual(await interruptions(page), [], 'no error dialog, no prompt once JupyterLab is up');

    await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
    // The status bar names the kernel once the session has one (the toolbar's indicator says idle before).
    await page.getByText('Python 3 (ipykernel) | Idle', { exact: true }).waitFor({ timeout: 120_000 });
    const cell = page.locator('.jp-NotebookPanel .jp-Cell .cm-content').first();
    await cell.fill(CODE);
    t.is(await cell.textContent(), CODE);
    await cell.press('Shift+Enter');
    const output = page.locator('.jp-NotebookPanel .jp-OutputArea-output').first();
    await output.waitFor({ timeout: 120_000 });
    t.is((await output.textContent())?.trim(), '2', 'the two default workers');
    // By now the extensions have polled their servers and the news plugin has asked, or not.
    t.deepEqual(await interruptions(page), [], 'still no dialog and no prompt after running a cell');

    await page.goto(`${url}/hub/home`);
    t.is(await page.locator('#state').textContent(), 'running with 2 workers');
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.waitForURL(/\/hub\/home$/);
    t.is(await page.locator('#state').textContent(), 'stopped');
  } catch (err) {
    t.log(`npm start output (end):\n${hub.output().slice(-4000)}`);
    const schedulerLog = await readFile(join(dir, 'state', 'clusters', STUDENT, 'scheduler.log'), 'utf8').catch(() => '(none)');
    t.log(`scheduler.log (end):\n${schedulerLog.slice(-4000)}`);
    throw err;
  }

  // Ctrl-C, as the README's reader stops it: the hub, its proxy and every cluster process are gone.
  killGroup(hub.child, 'SIGINT');
  await hub.exited;
  t.deepEqual(await waitUntil('every process started from the copy to end', async () => {
    const left = await processesUnder(dir);
    return left.length === 0 ? left : undefined;
  }, { timeoutMs: 30_000 }).catch(async () => processesUnder(dir)), []);
});
