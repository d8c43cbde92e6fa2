/** See compile-cache.mjs beside this file: turns Node's compile cache on in a directory only this user can write. */
export function turnOnCompileCache(): string | undefined;
