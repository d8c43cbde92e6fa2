// Node's compile cache, turned on where only the hub's user can write (plain JavaScript so
// that bin/compile-cache.mjs can call it before any `.ts` module loads; see there why).
//
// The cache holds code the hub runs: whoever can write into it runs code as the hub (as root
// on a machine whose students have accounts of their own). So it lives in the hub user's own
// home (~/.cache/clusterhub/node-compile-cache), never in a shared directory such as /tmp, and
// a directory that is not the hub user's own, or that others may write to, is not used at all.
import { lstatSync, mkdirSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Turns the cache on: in NODE_COMPILE_CACHE when the operator set it (Node itself honours that
 * variable from the process's start, so it is taken as given), else in the hub user's own
 * directory. Children such as the proxy inherit the choice. Returns the directory, or
 * undefined when the default directory is not safe to use (then nothing is cached) or
 * NODE_DISABLE_COMPILE_CACHE=1 is set.
 */
export function turnOnCompileCache() {
  if (process.env.NODE_COMPILE_CACHE) return enableCompileCache(process.env.NODE_COMPILE_CACHE).directory;
  const dir = join(homedir(), '.cache', 'clusterhub', 'node-compile-cache');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
      process.stderr.write(`clusterhub: not using the compile cache ${dir}: it must be a directory of this user's that no one else can write to\n`);
      return undefined;
    }
  } catch (err) {
    process.stderr.write(`clusterhub: no compile cache (${dir}: ${err.message})\n`);
    return undefined;
  }
  process.env.NODE_COMPILE_CACHE = dir;
  return enableCompileCache(dir).directory;
}

