// Turns Node's compile cache on before any `.ts` module loads (bin/clusterhub.mjs imports it
// first; `node --import ./bin/compile-cache.mjs some.ts` does the same for another entry).
//
// Plain JavaScript on purpose: Node strips the types of a `.ts` module with a type stripper
// of its own (about 17 MiB that stay resident) before any of it runs, so a `.ts` entry point
// that turns the cache on itself (hub/node-runtime.ts) has already paid for it. With the
// cache on from here, each `.ts` module comes type-stripped and compiled from the cache of
// the last start, and the stripper is not loaded at all.
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// As hub/node-runtime.ts: an operator's NODE_COMPILE_CACHE wins (children inherit it), and
// NODE_DISABLE_COMPILE_CACHE=1 turns the cache off.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'node-compile-cache');
enableCompileCache(process.env.NODE_COMPILE_CACHE);
