/**
 * A student in a real browser: sign in through the GitHub emulator, press Launch, watch the
 * progress bar move, arrive in JupyterLab through the proxy, then Stop. Real everything:
 * Chromium, configurable-http-proxy, the local backend's Jupyter, Dask, Spark, IPython.
 */
import test from 'ava';
import { startGitHubEmulator } from './fixtures/github.ts';
import { launchBrowser } from './helpers/browser.ts';
import { startTestHub } from './helpers/hub.ts';
import { waitUntil } from './helpers/net.ts';

test('sign in with GitHub, Launch, progress, JupyterLab through the proxy, Stop', async (t) => {
  const github = await startGitHubEmulator({ clientId: 'browser-test', clientSecret: 'browser-secret', users: [{ login: 'ada', id: 7 }, { login: 'mallory', id: 8 }] });
  t.teardown(() => github.close());
  const hub = await startTestHub({
    config: {
      auth: { allowedUsers: ['ada'], github: { clientId: 'browser-test', clientSecret: 'browser-secret', baseUrl: github.baseUrl, apiUrl: github.apiUrl } },
      spawn: { defaultWorkers: 1, startTimeoutSeconds: 240 },
    },
  });
  t.teardown(async () => {
    await hub.manager.stop('ada', { actor: 'test' }).catch(() => {});
    await hub.destroy();
  });
  github.setCallbackUrl(`${hub.publicUrl}/hub/oauth_callback`);
  const browser = await launchBrowser();
  t.teardown(() => browser.cleanup());
  const page = await browser.newPage();

  // A refused GitHub user sees why.
  github.signInAs('mallory');
  await page.goto(hub.publicUrl);
  await page.getByRole('link', { name: /Sign in with GitHub/ }).click();
  await page.waitForLoadState();
  t.regex(await page.content(), /mallory is not on this hub's allow-list/);

  github.signInAs('ada');
  await page.goto(hub.publicUrl);
  t.regex(page.url(), /\/hub\/login/);
  await page.getByRole('link', { name: /Sign in with GitHub/ }).click();
  await page.waitForURL(/\/hub\/home$/);
  t.is(await page.locator('#state').textContent(), 'stopped');

  // Record the progress bar's values as the page sets them (kept on this side across navigations).
  const seen: number[] = [];
  await page.exposeFunction('recordProgress', (value: number) => seen.push(value));
  // (Browser-side code as strings: this file is type-checked against Node's types, not the DOM's.)
  await page.evaluate(`(() => {
    const bar = document.getElementById('bar');
    const native = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
    Object.defineProperty(bar, 'value', {
      get: () => native.get.call(bar),
      set: (v) => { window.recordProgress(v); native.set.call(bar, v); },
    });
  })()`);
  const launched = performance.now();
  await page.getByRole('button', { name: 'Launch' }).click();
  await page.waitForFunction(`!document.getElementById('progress').hidden`);
  await page.waitForURL(/\/user\/ada\/lab/, { timeout: 240_000 });
  const seconds = (performance.now() - launched) / 1000;
  t.log(`Launch → JupyterLab page: ${seconds.toFixed(1)} s`);

  // JupyterLab itself, served by the student's Jupyter through the proxy.
  await page.locator('#jp-main-dock-panel').waitFor({ timeout: 60_000 });
  t.regex(await page.title(), /JupyterLab/);
  t.false(page.url().includes('token='), 'JupyterLab drops the token from the address bar');

  t.true(new Set(seen).size >= 3, `the progress bar moved: ${seen.join(', ')}`);
  t.deepEqual(seen, [...seen].sort((a, b) => a - b), 'and never went backwards');
  t.is(seen.at(-1), 100);

  await page.goto(`${hub.publicUrl}/hub/home`);
  t.is(await page.locator('#state').textContent(), 'running with 1 worker');
  const stopping = performance.now();
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.waitForURL(/\/hub\/home$/);
  t.is(await page.locator('#state').textContent(), 'stopped');
  t.log(`Stop → stopped page: ${((performance.now() - stopping) / 1000).toFixed(1)} s`);
  t.is(hub.store.getCluster('ada'), undefined);
  t.false('/user/ada' in await hub.proxy.getRoutes());
  t.log(`progress values: ${seen.join(', ')}`);
});

// JupyterLab keeps a student's layout with their work: the next launch (new ports locally)
// restores the open notebook and the Dask panel, and neither may greet them with an error.
test('the next launch restores the notebook and the Dask panel: no "Select Kernel" dialog, the panel\'s dashboard answers', async (t) => {
  const github = await startGitHubEmulator({ clientId: 'layout-test', clientSecret: 'layout-secret', users: [{ login: 'grace', id: 9 }] });
  t.teardown(() => github.close());
  const hub = await startTestHub({
    config: {
      auth: { allowedUsers: ['grace'], github: { clientId: 'layout-test', clientSecret: 'layout-secret', baseUrl: github.baseUrl, apiUrl: github.apiUrl } },
      spawn: { defaultWorkers: 1, startTimeoutSeconds: 240 },
    },
  });
  t.teardown(async () => {
    await hub.manager.stop('grace', { actor: 'test', removeWorkspace: true }).catch(() => {});
    await hub.destroy();
  });
  github.setCallbackUrl(`${hub.publicUrl}/hub/oauth_callback`);
  const browser = await launchBrowser();
  t.teardown(() => browser.cleanup());
  const page = await browser.newPage();
  const dashboardErrors: string[] = [];
  page.on('response', (r) => {
    if (/\/user\/grace\/(dask|proxy)\//.test(r.url()) && r.status() >= 400) dashboardErrors.push(`${r.status()} ${new URL(r.url()).pathname}`);
  });
  const interruptions = () => page.locator('.jp-Dialog, .Toastify__toast').allTextContents();
  const launch = async () => {
    await page.goto(`${hub.publicUrl}/hub/home`);
    await page.getByRole('button', { name: 'Launch' }).click();
    await page.waitForURL(/\/user\/grace\/lab/, { timeout: 240_000 });
    await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 90_000 });
  };
  const daskPanel = async () => {
    await page.locator('.lm-TabBar-tab[data-id="dask-dashboard-launcher"]').click();
    // Its plot buttons are listed once the dashboard at its URL answers.
    await page.locator('.dask-DashboardListing-item').first().waitFor({ timeout: 60_000 });
    // As typed, or absolute once the panel has checked it.
    return new URL(await page.locator('.dask-URLInput-wrapper input').first().inputValue(), hub.publicUrl).href;
  };

  github.signInAs('grace');
  await page.goto(hub.publicUrl);
  await page.getByRole('link', { name: /Sign in with GitHub/ }).click();
  await page.waitForURL(/\/hub\/home$/);
  await launch();
  await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
  await page.getByText('Python 3 (ipykernel) | Idle', { exact: true }).waitFor({ timeout: 120_000 });
  t.is(await daskPanel(), `${hub.publicUrl}/user/grace/dask/`);
  // JupyterLab saves the layout on its own schedule: wait until the server has it, panel and all.
  const token = hub.store.getCluster('grace')!.jupyterToken;
  await waitUntil('JupyterLab to save the layout with the notebook and the Dask panel', async () => {
    const res = await fetch(`${hub.publicUrl}/user/grace/lab/api/workspaces/default`, { headers: { Authorization: `token ${token}` } });
    const text = await res.text();
    return res.ok && text.includes('Untitled.ipynb') && text.includes('dask-dashboard-launcher');
  }, { timeoutMs: 60_000, intervalMs: 500 });

  // Stopped before the notebook was ever saved with a kernel, as a class's clusters often are.
  await page.goto(`${hub.publicUrl}/hub/home`);
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.waitForURL(/\/hub\/home$/);
  t.is(await page.locator('#state').textContent(), 'stopped');

  dashboardErrors.length = 0;
  await launch();
  await page.locator('.jp-NotebookPanel').first().waitFor({ timeout: 60_000 });
  t.deepEqual(await page.locator('#jp-main-dock-panel .lm-TabBar-tabLabel').allTextContents(), ['Untitled.ipynb'], 'the notebook is open again');
  const idle = page.getByText('Python 3 (ipykernel) | Idle', { exact: true });
  await idle.or(page.locator('.jp-Dialog')).first().waitFor({ timeout: 120_000 });
  t.deepEqual(await interruptions(), [], 'its kernel starts by itself: no dialog');
  await idle.waitFor({ timeout: 120_000 });
  t.is(await daskPanel(), `${hub.publicUrl}/user/grace/dask/`, 'the panel kept its URL, and it answers at this launch');
  t.deepEqual(dashboardErrors, [], 'no dashboard request failed after the relaunch');
});
