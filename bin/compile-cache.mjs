// Turns Node's compile cache on before any `.ts` module loads (bin/clusterhub.mjs imports it
// first; `node --import ./bin/compile-cache.mjs some.ts` does the same for another entry;
// hub/node-runtime.ts calls it again for entries that did not).
//
// Plain JavaScript on purpose: Node strips the types of a `.ts` module with a type stripper
// of its own (about 17 MiB that stay resident) before any of it runs, so a `.ts` entry point
// that turns the cache on itself has already paid for it. With the cache on from here, each
// `.ts` module comes type-stripped and compiled from the cache of the last start, and the
// stripper is not loaded at all.
import { turnOnCompileCache } from '../shared/compile-cache.mjs';

turnOnCompileCache();
