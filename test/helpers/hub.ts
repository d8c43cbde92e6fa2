/** A whole hub on free loopback ports with a fresh state directory, and signed-in clients. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { startHub, type RunningHub } from '../../hub/main.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import type { Backend } from '../../spawner/types.ts';
import { hiddenField, HttpClient } from './http.ts';
import { freePort } from './net.ts';
import { testPorts } from './ports.ts';

export interface TestHub extends RunningHub {
  config: Config;
  /** A client signed in through the dev sign-in form, as a person would. */
  signIn(login: string): Promise<HttpClient>;
  /** A client with no cookies. */
  anonymous(): HttpClient;
  /** An API token for `login` (admin scope when the user is an admin). */
  token(login: string, options?: { admin?: boolean }): string;
  /** Stop the hub and delete its state (and, with the default, its backend's clusters). */
  destroy(): Promise<void>;
}

/** Two adjacent free ports (the proxy's public port and its API port). */
export async function adjacentPorts(): Promise<number> {
  return (await testPorts(2, { adjacent: true }))[0]!;
}

/** `hub.publicUrl` may say `{port}`: the public port is only picked here. */
function withPort(hub: Record<string, unknown> | undefined, port: number): Record<string, unknown> | undefined {
  if (typeof hub?.publicUrl !== 'string') return hub;
  return { ...hub, publicUrl: hub.publicUrl.replace('{port}', String(port)) };
}

export async function startTestHub(options: {
  backend?: Backend;
  config?: Record<string, Record<string, unknown>>;
  stateDir?: string;
  log?: Logger;
} = {}): Promise<TestHub> {
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'clusterhub-test-'));
  const port = await adjacentPorts();
  const raw: Record<string, Record<string, unknown>> = {
    ...options.config,
    hub: { port, hubPort: await freePort(), stateDir, logLevel: 'warn', ...withPort(options.config?.hub, port) },
    auth: { admins: ['teacher'], ...options.config?.auth },
    culler: { enabled: false, ...options.config?.culler },
  };
  const config = parseConfig(raw, 'test');
  const hub = await startHub(config, { log: options.log ?? silentLogger(), backend: options.backend });
  const testHub: TestHub = {
    ...hub,
    config,
    anonymous: () => new HttpClient(hub.publicUrl),
    async signIn(login) {
      const client = new HttpClient(hub.publicUrl);
      const page = await client.get('/hub/login');
      const csrf = hiddenField(page.text, '_csrf');
      if (!csrf) throw new Error(`no CSRF field on the sign-in page (status ${page.status})`);
      const res = await client.post('/hub/dev-login', { form: { name: login, _csrf: csrf } });
      if (res.status !== 303 && res.status !== 302) throw new Error(`dev sign-in as ${login} failed: ${res.status} ${res.text.slice(0, 200)}`);
      return client;
    },
    token(login, tokenOptions = {}) {
      const admin = tokenOptions.admin ?? config.auth.admins.includes(login);
      hub.store.upsertUser({ login, admin });
      return hub.store.createToken(login, { scopes: admin ? ['user', 'admin'] : ['user'] }).token;
    },
    async destroy() {
      await hub.close();
      const destroyAll = (options.backend as { destroyAll?: () => Promise<void> } | undefined)?.destroyAll;
      if (destroyAll) await destroyAll.call(options.backend);
      if (!options.stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return testHub;
}
