/**
 * An instructor in a real browser (Chromium, GitHub sign-in through the emulator): adds a
 * student, sees the event in the log, exports the class as CSV, and resets the student after
 * the confirmation page; the added student can then sign in though no allow-list names them.
 * Clusters from the echo backend (the console is what is tested).
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { startGitHubEmulator } from './fixtures/github.ts';
import { launchBrowser } from './helpers/browser.ts';
import { EchoBackend } from './helpers/echo-backend.ts';
import { startTestHub } from './helpers/hub.ts';

test('an instructor adds a student, sees the event, exports CSV and confirms a reset', async (t) => {
  const github = await startGitHubEmulator({ clientId: 'console-test', clientSecret: 'console-secret', users: [{ login: 'teacher', id: 1 }, { login: 'ada', id: 7 }] });
  t.teardown(() => github.close());
  const backend = new EchoBackend();
  const hub = await startTestHub({
    backend,
    config: { auth: { github: { clientId: 'console-test', clientSecret: 'console-secret', baseUrl: github.baseUrl, apiUrl: github.apiUrl } } },
  });
  t.teardown(() => hub.destroy());
  github.setCallbackUrl(`${hub.publicUrl}/hub/oauth_callback`);
  const browser = await launchBrowser();
  t.teardown(() => browser.cleanup());

  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  github.signInAs('teacher');
  await page.goto(`${hub.publicUrl}/hub/admin`);
  await page.getByRole('link', { name: /Sign in with GitHub/ }).click();
  await page.waitForURL(/\/hub\/admin$/);

  await page.getByLabel(/GitHub logins/).fill('ada');
  await page.getByRole('button', { name: 'Add' }).click();
  await page.waitForURL(/done=/);
  t.is(await page.locator('#flash').textContent(), 'added 1 student: ada');
  t.is(await page.locator('tr[data-user="ada"] .phase').textContent(), 'stopped');

  await page.getByRole('link', { name: 'Event log' }).click();
  const added = page.locator('tr[data-kind="user-added"]').first();
  t.regex(await added.textContent() ?? '', /ada\s*added to the class\s*teacher/);

  await page.getByRole('link', { name: 'Back to the class' }).click();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  t.regex(download.suggestedFilename(), /^clusterhub-class-\d{4}-\d\d-\d\d\.csv$/);
  const csv = await readFile((await download.path())!, 'utf8');
  t.regex(csv, /^login,instructor,cluster state,workers,launched,last activity,culls\n/);
  t.regex(csv, /\nada,no,stopped,,,[^,]*,0\n/);
  t.regex(csv, /\nteacher,yes,/);

  await hub.manager.launch('ada', 1).done;
  await page.reload();
  t.is(await page.locator('tr[data-user="ada"] .phase').textContent(), 'running');
  await page.locator('tr[data-user="ada"]').getByRole('link', { name: 'Reset' }).click();
  await page.waitForURL(/\/hub\/admin\/confirm\?action=reset&user=ada/);
  t.regex(await page.locator('#lost').textContent() ?? '', /ada's workspace is deleted: every notebook and file in it/);
  t.true(backend.clusters.has('ada'), 'nothing happens before the confirmation');
  await page.getByRole('button', { name: 'Reset ada' }).click();
  await page.waitForURL(/done=/);
  t.is(await page.locator('#flash').textContent(), 'reset: ada');
  t.false(backend.clusters.has('ada'));
  await page.getByRole('link', { name: 'Event log' }).click();
  t.regex(await page.locator('tr[data-kind="reset"]').first().textContent() ?? '', /ada\s*reset\s*teacher\s*reset by teacher/);

  // The student was on no allow-list: being on the roster lets her in.
  const student = await (await browser.newContext()).newPage();
  github.signInAs('ada');
  await student.goto(`${hub.publicUrl}/hub/home`);
  await student.getByRole('link', { name: /Sign in with GitHub/ }).click();
  await student.waitForURL(/\/hub\/home$/);
  t.is(await student.locator('#state').textContent(), 'stopped');
});
