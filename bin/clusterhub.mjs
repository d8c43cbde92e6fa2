#!/usr/bin/env node
// The `clusterhub` command (npm start, the package's bin, the hub image's entry point):
// Node's compile cache first (./compile-cache.mjs says why this is JavaScript), then hub/cli.ts.
import './compile-cache.mjs';

await import('../hub/cli.ts');
