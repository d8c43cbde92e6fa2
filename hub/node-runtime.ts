/**
 * How the hub's Node process is set up before the hub's modules load (hub/cli.ts does it
 * first): Node's compile cache, and a young generation that does not grow.
 *
 * The compile cache lets a start reuse the type-stripped, compiled modules of the last one
 * instead of stripping ~600 files again (about half of the start time). Node keys entries
 * by source hash, so a changed file is compiled afresh.
 *
 * V8 doubles the young generation under a burst of requests (to 64 MiB and more) and keeps
 * it: an idle hub would hold that memory for good. Scavenges of a small one are cheap, as
 * a request's garbage dies young.
 */
import { enableCompileCache, flushCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';

/**
 * Turns the cache on for modules loaded from now on (so entry points import the rest
 * dynamically after this) and for child processes (the proxy) through NODE_COMPILE_CACHE.
 * An operator's own NODE_COMPILE_CACHE wins; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 * Started through bin/clusterhub.mjs (npm start, the image) the cache is on already, before
 * the first `.ts` file, so Node's type stripper is not even loaded.
 */
export function setUpNodeRuntime(): void {
  process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'node-compile-cache');
  enableCompileCache(process.env.NODE_COMPILE_CACHE);
  // Read by V8 at each young-generation resize, so it takes effect after start too.
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Writes what was compiled so far (a hub is rarely stopped cleanly enough for Node to do it at exit). */
export function saveCompileCache(): void {
  flushCompileCache();
}
