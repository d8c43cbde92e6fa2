/** The images the real node runs, built by images.sh (buildah on a local Debian base). */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const IMAGES_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'images.sh');

/** One image: the name pods use and the OCI archive the node imports. */
export interface LocalImage {
  ref: string;
  archive: string;
}

/** The sandbox (pause), cluster and hub images for the current inputs. */
export interface NodeImages {
  sandbox: LocalImage;
  cluster: LocalImage;
  hub: LocalImage;
}

async function locate(): Promise<NodeImages> {
  const { stdout } = await run('bash', [IMAGES_SCRIPT, '--print']);
  const kv = Object.fromEntries(stdout.trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  const image = (key: string): LocalImage => {
    const ref = kv[`${key}_IMAGE`];
    const archive = kv[`${key}_ARCHIVE`];
    if (!ref || !archive) throw new Error(`images.sh --print did not name ${key}: ${stdout}`);
    return { ref, archive };
  };
  return { sandbox: image('SANDBOX'), cluster: image('CLUSTER'), hub: image('HUB') };
}

/**
 * The images, built first by images.sh when an input changed (progress on stderr; the
 * first build takes several minutes: Debian packages, then PyPI and npm).
 */
export async function ensureImages(): Promise<NodeImages> {
  const images = await locate();
  // The hub image runs on the node too (test/real-node.test.ts checks it there).
  const needed = [images.sandbox, images.cluster, images.hub];
  if (needed.every((i) => existsSync(i.archive))) return images;
  if (process.env['CLUSTERHUB_KUBE_NO_BUILD'] === '1') throw new Error(`images missing; run: bash ${IMAGES_SCRIPT}`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('bash', [IMAGES_SCRIPT], { stdio: ['ignore', process.stderr, process.stderr] });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const absent = needed.filter((i) => !existsSync(i.archive));
  if (code !== 0 || absent.length > 0) throw new Error(`bash ${IMAGES_SCRIPT} exited ${code}; missing ${absent.map((i) => i.ref).join(', ')}`);
  return images;
}
