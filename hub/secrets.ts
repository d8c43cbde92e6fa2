/** Secrets the hub needs, taken from config or generated once and kept in the state directory. */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';

export interface HubSecrets {
  cookieSecret: string;
  proxyAuthToken: string;
}

/** Reads `{stateDir}/secrets.json` (mode 0600), generating what is missing; config wins. */
export function loadSecrets(config: Config): HubSecrets {
  mkdirSync(config.hub.stateDir, { recursive: true, mode: 0o700 });
  const file = join(config.hub.stateDir, 'secrets.json');
  let kept: Partial<HubSecrets> = {};
  try {
    kept = JSON.parse(readFileSync(file, 'utf8')) as Partial<HubSecrets>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  const secrets: HubSecrets = {
    cookieSecret: kept.cookieSecret ?? randomBytes(32).toString('hex'),
    proxyAuthToken: kept.proxyAuthToken ?? randomBytes(32).toString('hex'),
  };
  if (secrets.cookieSecret !== kept.cookieSecret || secrets.proxyAuthToken !== kept.proxyAuthToken) {
    writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return {
    cookieSecret: config.hub.cookieSecret ?? secrets.cookieSecret,
    proxyAuthToken: config.proxy.authToken ?? secrets.proxyAuthToken,
  };
}
