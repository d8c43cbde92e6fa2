/**
 * A student in a real browser: sign in through the GitHub emulator, press Launch, watch the
 * progress bar move, arrive in JupyterLab through the proxy, then Stop. Real everything:
 * Chromium, configurable-http-proxy, the local backend's Jupyter, Dask, Spark, IPython.
 */
import test from 'ava';
import { startGitHubEmulator } from './fixtures/github.ts';
import { launchBrowser } from './helpers/browser.ts';
import { startTestHub } from './helpers/hub.ts';

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
