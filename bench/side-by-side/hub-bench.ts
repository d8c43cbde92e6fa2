/**
 * The hub benchmark: JupyterHub (instant spawner) and clusterhub (instant backend), each as
 * its own process with a managed configurable-http-proxy, alternating for N rounds.
 */
import { loadavg } from 'node:os';
import { startHttpTarget } from '../../test/helpers/net.ts';
import { startClusterhub, startJupyterHub, seed, type HubSetup, type HubUnderTest, type Seeded } from './hubs.ts';
import { launchAll, load, rssMiB, stopAll } from './measure.ts';
import { renderTable, type Row } from './table.ts';

export interface HubBenchOptions {
  rounds: number;
  users: number;
  concurrent: number;
  loadSeconds: number;
  venvBin: string;
  log: (line: string) => void;
  /**
   * `list`: only the list and single-user reads (with the concurrent launches that make their
   * page); `start`: only start → API ready (each round one fresh start). To iterate on them.
   */
  only?: 'list' | 'start';
  /** Run only this hub's rounds (the other's column stays empty). */
  hub?: 'JupyterHub' | 'clusterhub';
}

type Sample = Record<string, number>;

/** Lets the process settle after start-up before its idle memory is read. */
const settle = () => new Promise((r) => setTimeout(r, 2000));

async function round(hub: HubUnderTest, concurrent: number, loadSeconds: number, only?: 'list' | 'start'): Promise<Sample> {
  const sample: Sample = { startup: hub.startupMs };
  if (only === 'start') {
    // Not timed: the hub finishes its start and writes its compile cache, as a hub that keeps
    // running does; a hub stopped at once would leave the next round a cold cache.
    await new Promise((r) => setTimeout(r, 1500));
    return sample;
  }
  await settle();
  sample.rssIdle = rssMiB(hub.pid);
  if (only !== 'list') {
    const single: number[] = [];
    for (let i = 0; i < 5; i++) {
      single.push(await launchAll(hub, ['user0']));
      await stopAll(hub, ['user0']);
    }
    sample.launchOne = single.sort((a, b) => a - b)[2]!;
  }
  const many = Array.from({ length: concurrent }, (_, i) => `user${i}`);
  sample.launchMany = await launchAll(hub, many);
  const list = await load(hub, hub.listPath, loadSeconds);
  sample.listReqs = list.reqPerSec;
  sample.listP99 = list.p99Ms;
  sample.listMax = list.maxMs;
  sample.listTimeouts = list.timeouts;
  sample.listBytes = list.bytesPerReply;
  const one = await load(hub, `/users/user${concurrent + 1}`, loadSeconds);
  sample.userReqs = one.reqPerSec;
  sample.userP99 = one.p99Ms;
  // One client polls the whole list back to back while 16 others read single users.
  const [, during] = await Promise.all([load(hub, hub.listPath, loadSeconds, 1), load(hub, `/users/user${concurrent + 2}`, loadSeconds)]);
  sample.userDuringListP99 = during.p99Ms;
  sample.userDuringListMax = during.maxMs;
  sample.rssLoaded = rssMiB(hub.pid);
  sample.stopMany = await stopAll(hub, many);
  return sample;
}

/** Runs the rounds and returns the printed table. */
export async function hubBench(options: HubBenchOptions): Promise<string> {
  const target = await startHttpTarget('bench target');
  const setup: HubSetup = { users: Array.from({ length: options.users }, (_, i) => `user${i}`), targetUrl: target.url };
  options.log(`seeding ${options.users} users into both hubs`);
  // JupyterHub is seeded through its own API (a start of its own); not needed for clusterhub's starts alone.
  const seeded: Seeded = await seed(setup, options.venvBin, { jupyterhub: !(options.only === 'start' && options.hub === 'clusterhub') });
  const peer: Sample[] = [];
  const ours: Sample[] = [];
  const loads: string[] = [];
  try {
    for (let r = 1; r <= options.rounds; r++) {
      for (const which of r % 2 ? ['JupyterHub', 'clusterhub'] as const : ['clusterhub', 'JupyterHub'] as const) {
        if (options.hub && which !== options.hub) continue;
        const load1 = loadavg()[0]!.toFixed(2);
        const hub = which === 'JupyterHub' ? await startJupyterHub(setup, seeded, options.venvBin) : await startClusterhub(setup, seeded);
        try {
          const sample = await round(hub, options.concurrent, options.loadSeconds, options.only);
          (which === 'JupyterHub' ? peer : ours).push(sample);
          loads.push(`round ${r} ${which}: load average ${load1} → ${loadavg()[0]!.toFixed(2)}`);
          options.log(`round ${r}/${options.rounds} ${which}: ${JSON.stringify(Object.fromEntries(Object.entries(sample).map(([k, v]) => [k, Math.round(v * 10) / 10])))}`);
        } finally {
          await hub.stop();
        }
      }
    }
  } finally {
    await target.close();
    seeded.cleanup();
  }
  const row = (measure: string, key: string, unit: Row['unit'], lowerIsBetter = true): Row => ({
    measure, unit, lowerIsBetter, peer: peer.map((s) => s[key] ?? Number.NaN), ours: ours.map((s) => s[key] ?? Number.NaN),
  });
  const n = options.concurrent;
  const rows: Row[] = [
    row('one launch → routable', 'launchOne', 'ms'),
    row(`${n} concurrent launches → all routed`, 'launchMany', 's'),
    row(`${n} concurrent stops → no route left`, 'stopMany', 's'),
    row(`start → API ready, ${options.users} users`, 'startup', 's'),
    row(`GET /users?limit=200, ${options.users} users, wrk -t2 -c16`, 'listReqs', 'req/s', false),
    row('… its p99', 'listP99', 'ms'),
    row('… its slowest request', 'listMax', 'ms'),
    row('… requests over 2 s (wrk timeouts)', 'listTimeouts', 'count'),
    row('… bytes per reply', 'listBytes', 'count'),
    row('GET /users/{name}, wrk -t2 -c16', 'userReqs', 'req/s', false),
    row('… its p99', 'userP99', 'ms'),
    row('GET /users/{name} -c16 while a client lists users: p99', 'userDuringListP99', 'ms'),
    row('… its slowest request', 'userDuringListMax', 'ms'),
    row(`hub RSS, ${options.users} users idle`, 'rssIdle', 'MiB'),
    row(`hub RSS, ${options.users} users, ${n} running, after load`, 'rssLoaded', 'MiB'),
  ];
  return `${renderTable('JupyterHub 5.5.4', rows)}\n\n${options.rounds} alternating rounds, medians (one launch: median of 5 per round).\n${loads.join('\n')}`;
}
