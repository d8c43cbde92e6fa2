/** The test git server (test/fixtures/git-http.ts) serves a shallow clone, as the materials' init container makes it. */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { serveGitRepo, splitCgiHeaders } from './fixtures/git-http.ts';
import { makeBareMaterialsRepo, MATERIALS_README } from './helpers/materials.ts';

const run = promisify(execFile);

test('git clone --depth 1 --branch main over smart HTTP gets the materials', async (t) => {
  const bare = await makeBareMaterialsRepo();
  const server = await serveGitRepo(bare, '127.0.0.1');
  const out = await mkdtemp(join(tmpdir(), 'clusterhub-clone-'));
  t.teardown(async () => {
    await server.close();
    await rm(dirname(bare), { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  });
  await run('git', ['clone', '--depth', '1', '--quiet', '--branch', 'main', server.url, join(out, 'm')]);
  t.is(await readFile(join(out, 'm', 'README.md'), 'utf8'), MATERIALS_README);
  t.is((await run('git', ['-C', join(out, 'm'), 'rev-parse', '--is-shallow-repository'])).stdout.trim(), 'true');
  t.is(server.clones(), 1);
  await t.throwsAsync(run('git', ['clone', '--quiet', server.url.replace('materials.git', 'other.git'), join(out, 'x')]), { message: /not found|404|repository/i });
});

test('a CGI answer splits into status, headers and body, with CRLF or LF line ends', (t) => {
  const crlf = splitCgiHeaders(Buffer.from('Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno'));
  t.like(crlf, { status: 404, headers: { 'Content-Type': 'text/plain' } });
  t.is(crlf?.body.toString(), 'no');
  const lf = splitCgiHeaders(Buffer.from('Content-Type: application/x-git-upload-pack-advertisement\n\n001e'));
  t.like(lf, { status: 200, headers: { 'Content-Type': 'application/x-git-upload-pack-advertisement' } });
  t.is(lf?.body.toString(), '001e');
  t.is(splitCgiHeaders(Buffer.from('Content-Type: text/plain\r\n')), undefined, 'the header block is not complete yet');
});
