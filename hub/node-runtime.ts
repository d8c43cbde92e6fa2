/**
 * How the hub's Node process is set up before the hub's modules load (hub/cli.ts does it
 * first): Node's compile cache, a young generation that does not grow, and an old one that
 * is collected before garbage piles up in it.
 *
 * The compile cache lets a start reuse the type-stripped, compiled modules of the last one
 * instead of stripping ~600 files again (about half of the start time). Node keys entries
 * by source hash, so a changed file is compiled afresh.
 *
 * V8 doubles the young generation under a burst of requests (to 64 MiB and more) and keeps
 * it: an idle hub would hold that memory for good. Scavenges of a small one are cheap, as
 * a request's garbage dies young.
 *
 * What survives two scavenges (requests in flight) goes to the old generation and dies there.
 * V8 lets that grow to up to 4x what the last full GC kept before it collects again, and does
 * not give the pages back after a burst: a hub with ~17 MiB live held 166-173 MiB of RSS after
 * load (94 MiB idle). Collecting at 1.5x keeps it at 108-112 MiB, at the same request rate
 * (measured: 2,000 list and 8,000 single-user requests, 16 at a time, 1,000 users).
 */
import { flushCompileCache } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { turnOnCompileCache } from '../shared/compile-cache.mjs';

/**
 * Turns the cache on for modules loaded from now on (so entry points import the rest
 * dynamically after this) and for child processes (the proxy) through NODE_COMPILE_CACHE.
 * An operator's own NODE_COMPILE_CACHE wins; NODE_DISABLE_COMPILE_CACHE=1 turns it off; a
 * directory others could write to is refused (shared/compile-cache.mjs says why).
 * Started through bin/clusterhub.mjs (npm start, the image) the cache is on already, before
 * the first `.ts` file, so Node's type stripper is not even loaded.
 */
export function setUpNodeRuntime(): void {
  turnOnCompileCache();
  // Read by V8 at each young-generation resize, so it takes effect after start too.
  setFlagsFromString('--semi-space-growth-factor=1');
  // Read at each old-generation limit, after every full GC: the next one comes when the old
  // generation is 1.5x what survived, not up to 4x (V8's default with a big heap limit).
  setFlagsFromString('--heap-growing-percent=50');
}

/** Writes what was compiled so far (a hub is rarely stopped cleanly enough for Node to do it at exit). */
export function saveCompileCache(): void {
  flushCompileCache();
}
