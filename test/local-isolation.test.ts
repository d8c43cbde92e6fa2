/**
 * Two students on one machine, the hub as root (how a class runs on the local backend, and
 * how CI runs): amy and ben launch real clusters (Dask, Spark, IPython Parallel, JupyterLab)
 * through the hub. From ben's notebook kernel every attack on amy and on the hub fails —
 * reading the hub's state or amy's files, signalling amy's processes, connecting to amy's
 * engines and dashboards — while amy's own notebook still uses every engine and the
 * dashboards through JupyterLab. Accounts get a prefix of their own per run (removed after).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { chown, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountName, lookupAccount } from '../spawner/local/accounts.ts';
import { clusterPaths, readRecord, type ClusterRecord } from '../spawner/local/state.ts';
import { tlsPaths } from '../spawner/local/tls.ts';
import { startTestHub, type TestHub } from './helpers/hub.ts';
import { apiAs } from './helpers/hub-api.ts';
import { runInKernel } from './helpers/kernel.ts';

const PREFIX = `clt${randomBytes(3).toString('hex')}-`;
const STUDENTS = ['amy', 'ben'];
let hub: TestHub | undefined;
let stateDir = '';
const tokens: Record<string, string> = {};

const record = async (user: string): Promise<ClusterRecord> => (await readRecord(clusterPaths(stateDir, user).stateFile))!;
/** Run `code` in a new kernel of `user`'s JupyterLab, through the hub's proxy as the browser does. */
async function kernel(user: string, code: string, timeoutMs = 240_000): Promise<string> {
  const row = hub!.store.getCluster(user)!;
  return runInKernel(`${hub!.publicUrl}/user/${user}/`, row.jupyterToken, code, { timeoutMs });
}
/** Lines `name: outcome` printed by the attack scripts, as an object. */
function outcomes(out: string): Record<string, string> {
  return Object.fromEntries(out.split('\n').filter((l) => l.startsWith('> ')).map((l) => {
    const [name, ...rest] = l.slice(2).split(': ');
    return [name!, rest.join(': ')];
  }));
}
function firewallRules(): string {
  return execFileSync('iptables', ['-w', '10', '-S', 'CLUSTERHUB-STUDENTS'], { encoding: 'utf8' });
}
async function launch(user: string): Promise<void> {
  const res = await apiAs(hub!, tokens[user]!, `/hub/api/users/${user}/cluster`, { method: 'POST', json: { workers: 1 } });
  if (res.status !== 202) throw new Error(`launch ${user}: ${res.status} ${await res.text()}`);
  for await (const event of hub!.manager.progress(user)) {
    if (event.failed) throw new Error(`${user}: ${event.message}`);
    if (event.ready) return;
  }
  throw new Error(`${user}: progress ended without ready`);
}
async function startHub(): Promise<TestHub> {
  hub = await startTestHub({ stateDir, config: { spawn: { backend: 'local' }, local: { spark: 'on', userPrefix: PREFIX } } });
  for (const login of [...STUDENTS, 'teacher']) tokens[login] = hub.token(login);
  return hub;
}

test.before(async (t) => {
  t.timeout(10 * 60_000);
  if (process.getuid?.() !== 0) throw new Error('this test needs root: the hub isolates students with OS accounts only as root (CI runs as root)');
  stateDir = await mkdtemp(join(tmpdir(), 'clusterhub-isolation-'));
  await startHub();
  const started = performance.now();
  await Promise.all(STUDENTS.map(launch));
  t.log(`two clusters with Spark ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

test.after.always(async () => {
  if (hub) {
    for (const user of STUDENTS) await hub.manager.stop(user, { actor: 'test', reason: 'test over', removeWorkspace: true }).catch(() => {});
    await hub.close();
  }
  for (const user of STUDENTS) {
    execFileSync('userdel', [accountName(PREFIX, user)], { stdio: 'ignore' });
  }
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

test.serial('each cluster runs as its student\'s own OS account, with no login shell, and its files are theirs alone', async (t) => {
  const uids = new Set<number>();
  for (const user of STUDENTS) {
    const r = await record(user);
    const account = (await lookupAccount(accountName(PREFIX, user)))!;
    t.is(r.account?.uid, account.uid);
    t.not(account.uid, 0);
    uids.add(account.uid);
    for (const pid of [r.scheduler!.pgid, ...r.workers.map((w) => w.pgid)]) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      t.regex(status, new RegExp(`^Uid:\\t${account.uid}\\t${account.uid}\\t`, 'm'), `process ${pid} of ${user} runs as ${account.name}`);
      t.regex(status, /^Groups:[\t ]*$/m, 'no supplementary groups (root\'s are dropped)');
    }
    t.regex(execFileSync('getent', ['passwd', account.name], { encoding: 'utf8' }), /:\/usr\/sbin\/nologin\n$/);
    for (const dir of [clusterPaths(stateDir, user).workspace, clusterPaths(stateDir, user).runtimeDir]) {
      const info = statSync(dir);
      t.is(info.uid, account.uid, `${dir} belongs to ${account.name}`);
      t.is(info.mode & 0o777, 0o700, `${dir} is 0700`);
    }
  }
  t.is(uids.size, 2, 'two students, two accounts');
  t.is(statSync(stateDir).mode & 0o777, 0o711, 'the state directory can be passed through, not listed');
  for (const file of ['secrets.json', 'clusterhub.sqlite']) t.is(statSync(join(stateDir, file)).mode & 0o777, 0o600, file);
  t.is(statSync(join(stateDir, 'clusters')).mode & 0o777, 0o700);
});

test.serial('from ben\'s kernel, the hub\'s state, amy\'s workspace and amy\'s runtime files cannot be read', async (t) => {
  await kernel('amy', 'open("diary.txt", "w").write("amy only")');
  const amy = clusterPaths(stateDir, 'amy');
  const tls = tlsPaths(amy.runtimeDir);
  const targets: Record<string, string> = {
    'hub secrets': join(stateDir, 'secrets.json'),
    'hub database': join(stateDir, 'clusterhub.sqlite'),
    'amy\'s cluster record': amy.stateFile,
    'ben\'s own cluster record': clusterPaths(stateDir, 'ben').stateFile,
    'amy\'s scheduler log': amy.schedulerLog,
    'amy\'s file': join(amy.workspace, 'diary.txt'),
    'amy\'s Jupyter config (token)': join(amy.runtimeDir, 'jupyter_server_config.json'),
    'amy\'s Dask key': tls.key,
    'amy\'s IPython Parallel key': join(amy.runtimeDir, 'ipython/profile_default/security/ipcontroller-client.json'),
    'amy\'s Spark secret': join(amy.runtimeDir, 'spark-conf/spark-defaults.conf'),
    'amy\'s scheduler environment': `/proc/${(await record('amy')).scheduler!.pgid}/environ`,
  };
  const listings: Record<string, string> = {
    'list the state directory': stateDir, 'list workspaces': join(stateDir, 'workspaces'),
    'list amy\'s workspace': amy.workspace, 'list amy\'s runtime': amy.runtimeDir, 'list clusters': join(stateDir, 'clusters'),
  };
  const out = await kernel('ben', [
    'import os',
    `for name, path in ${JSON.stringify(targets)}.items():`,
    '    try:',
    '        open(path, "rb").read(); print(f"> {name}: READ")',
    '    except OSError as err: print(f"> {name}: {type(err).__name__}")',
    `for name, path in ${JSON.stringify(listings)}.items():`,
    '    try:',
    '        os.listdir(path); print(f"> {name}: LISTED")',
    '    except OSError as err: print(f"> {name}: {type(err).__name__}")',
  ].join('\n'));
  const seen = outcomes(out);
  for (const name of [...Object.keys(targets), ...Object.keys(listings)]) t.is(seen[name], 'PermissionError', name);
  t.is(await kernel('amy', 'print(open("diary.txt").read())').then((s) => s.trim()), 'amy only', 'amy still reads her own file');
});

test.serial('from ben\'s kernel, amy\'s processes cannot be signalled', async (t) => {
  const r = await record('amy');
  const pids = [r.scheduler!.pgid, ...r.workers.map((w) => w.pgid)];
  const out = await kernel('ben', [
    'import os, signal',
    `for pid in ${JSON.stringify(pids)}:`,
    '    for name, sig, target in (("kill", signal.SIGKILL, pid), ("kill group", signal.SIGTERM, -pid)):',
    '        try:',
    '            os.kill(target, sig); print(f"> {name} {pid}: SIGNALLED")',
    '        except OSError as err: print(f"> {name} {pid}: {type(err).__name__}")',
  ].join('\n'));
  const seen = outcomes(out);
  for (const pid of pids) {
    t.is(seen[`kill ${pid}`], 'PermissionError');
    t.is(seen[`kill group ${pid}`], 'PermissionError');
  }
  t.is((await hub!.backend.status('amy')).state, 'running');
});

/** What ben's kernel sees of one process under /proc: its command line (or why not), and the outcome of each probe. */
interface SeenProcess {
  uid: number;
  cmdline: string[] | string;
  environ: string; cwd: string; fd: string; root: string; maps: string; signal: string;
}

test.serial('from ben\'s kernel, amy\'s processes are listed with command lines that hold no secret; their environment, working directory and open files stay closed, and signals fail', async (t) => {
  t.timeout(6 * 60_000);
  const r = await record('amy');
  const amy = r.account!;
  const runtime = clusterPaths(stateDir, 'amy').runtimeDir;
  const hubSecrets = JSON.parse(await readFile(join(stateDir, 'secrets.json'), 'utf8')) as Record<string, string>;
  const ippKey = (JSON.parse(await readFile(join(runtime, 'ipython/profile_default/security/ipcontroller-client.json'), 'utf8')) as { key: string }).key;
  const tlsKeyLine = (await readFile(tlsPaths(runtime).key, 'utf8')).split('\n').find((l) => l.length >= 40 && !l.startsWith('-----'))!;
  const secrets: Record<string, string> = {
    'amy\'s Jupyter token': r.jupyterToken, 'amy\'s Spark secret': r.sparkSecret!, 'amy\'s IPython Parallel key': ippKey,
    'amy\'s Dask TLS key': tlsKeyLine, 'the proxy\'s token': hubSecrets.proxyAuthToken!, 'the cookie secret': hubSecrets.cookieSecret!,
  };
  for (const [name, value] of Object.entries(secrets)) t.true(typeof value === 'string' && value.length >= 16, name);

  // amy's notebook keeps a Spark application open (its driver, an executor on each worker)
  // until the test writes to a FIFO only she can read: so every kind of her processes runs.
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-hold-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'release');
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  await chown(fifo, amy.uid, amy.gid);
  await chown(dir, amy.uid, amy.gid);
  let sparkUp!: () => void;
  const up = new Promise<void>((resolve) => { sparkUp = resolve; });
  const holding = runInKernel(`${hub!.publicUrl}/user/amy/`, hub!.store.getCluster('amy')!.jupyterToken, [
    'from pyspark.sql import SparkSession',
    'spark = SparkSession.builder.getOrCreate()',
    'print("> spark:", spark.sparkContext.parallelize(range(100), 2).sum(), flush=True)',
    `open(${JSON.stringify(fifo)}).read()`,
    'spark.stop()',
  ].join('\n'), { timeoutMs: 300_000, onOutput: (text) => { if (text.includes('> spark:')) sparkUp(); } });
  await Promise.race([up, holding.then((out) => { throw new Error(`amy's Spark application ended early:\n${out}`); })]);

  const proxyPid = hub!.supervisor!.pid!;
  const out = await kernel('ben', [
    'import json, os, signal',
    `uid, proxy_pid = ${amy.uid}, ${proxyPid}`,
    'found = {}',
    'for name in filter(str.isdigit, os.listdir("/proc")):',
    '    pid = int(name)',
    '    try: status = open(f"/proc/{pid}/status").read()',
    '    except OSError: continue',
    '    # A zombie (ended, not reaped yet) has no memory, files or environment left to read.',
    '    if "\\nState:\\tZ" in status: continue',
    '    owner = int(next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1])',
    '    if owner != uid and pid != proxy_pid: continue',
    '    seen = {"uid": owner}',
    '    try: seen["cmdline"] = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\\0")',
    '    except OSError as err: seen["cmdline"] = type(err).__name__',
    '    probes = {',
    '        "environ": lambda: open(f"/proc/{pid}/environ", "rb").read(),',
    '        "cwd": lambda: os.listdir(f"/proc/{pid}/cwd"),',
    '        "fd": lambda: os.listdir(f"/proc/{pid}/fd"),',
    '        "root": lambda: os.listdir(f"/proc/{pid}/root"),',
    '        "maps": lambda: open(f"/proc/{pid}/maps").read(),',
    '        "signal": lambda: os.kill(pid, signal.SIGKILL),',
    '    }',
    '    for what, probe in probes.items():',
    '        try: probe(); seen[what] = "OPEN"',
    '        except OSError as err: seen[what] = type(err).__name__',
    '    # A process that ended during the scan says nothing.',
    '    if not {"FileNotFoundError", "ProcessLookupError"} & set(map(str, seen.values())): found[pid] = seen',
    'print("> scan:", json.dumps(found))',
  ].join('\n'));
  const release = writeFile(fifo, 'done\n');
  const scan = JSON.parse(outcomes(out).scan!) as Record<string, SeenProcess>;
  const amys = Object.entries(scan).filter(([, p]) => p.uid === amy.uid);
  const commandLines = amys.map(([, p]) => (Array.isArray(p.cmdline) ? p.cmdline.join(' ') : ''));
  t.log(`${amys.length} of amy's processes listed`);
  // The list itself is visible (no hidepid on /proc): names and arguments, as `ps` shows them.
  t.true(amys.every(([, p]) => Array.isArray(p.cmdline)), 'command lines are readable across accounts');
  for (const part of ['jupyter', 'dask scheduler', 'dask worker', 'ipcontroller', 'ipengine', 'ipykernel_launcher', 'org.apache.spark.deploy.worker.Worker', 'CoarseGrainedExecutorBackend']) {
    t.true(commandLines.some((c) => c.includes(part)), `ben's scan covered amy's ${part}`);
  }
  const leaks = Object.entries(scan).flatMap(([pid, p]) => Object.entries(secrets)
    .filter(([, value]) => Array.isArray(p.cmdline) && p.cmdline.join(' ').includes(value)).map(([name]) => `${name} in the command line of ${pid}`));
  t.deepEqual(leaks, [], 'no command line carries a secret');
  t.true(String(scan[proxyPid]?.cmdline).includes('front.ts'), 'the hub\'s proxy was scanned too');
  for (const [pid, p] of Object.entries(scan)) {
    t.like(p, { environ: 'PermissionError', cwd: 'PermissionError', fd: 'PermissionError', root: 'PermissionError', maps: 'PermissionError', signal: 'PermissionError' }, `process ${pid} (${String(p.cmdline).slice(0, 80)})`);
  }

  await release;
  t.regex(await holding, /> spark: 4950/);
  t.is((await hub!.backend.status('amy')).state, 'running');
});

/** Attempts on every port of amy's cluster; each prints `> name: outcome`. */
function attacks(r: ClusterRecord, ipp: { registration: number; key: string; file: string }): string {
  const ports = { jupyter: r.ports.jupyter, 'dask scheduler': r.ports.dask, 'dask dashboard': r.ports.dashboard, 'spark master': r.ports.spark, 'spark master ui': r.ports.sparkUi, 'ipp controller': ipp.registration };
  return [
    'import json, os, socket, tempfile, urllib.request',
    `for name, port in ${JSON.stringify(ports)}.items():`,
    '    s = socket.socket(); s.settimeout(10)',
    '    try:',
    '        s.connect(("127.0.0.1", port)); print(f"> tcp {name}: CONNECTED")',
    '    except OSError as err: print(f"> tcp {name}: {type(err).__name__}")',
    '    finally: s.close()',
    `for name, url in {"dask dashboard": "http://127.0.0.1:${r.ports.dashboard}/status", "spark ui": "http://127.0.0.1:${r.ports.sparkUi}/", "jupyter with amy's token": "http://127.0.0.1:${r.ports.jupyter}${r.baseUrl}api/status?token=${r.jupyterToken}"}.items():`,
    '    try:',
    '        urllib.request.urlopen(url, timeout=10); print(f"> http {name}: 200")',
    '    except Exception as err: print(f"> http {name}: {type(getattr(err, \'reason\', err)).__name__}")',
    'from distributed import Client',
    'from distributed.security import Security',
    `for name, address, security in (("tls", "tls://127.0.0.1:${r.ports.dask}", None), ("plain", "tcp://127.0.0.1:${r.ports.dask}", Security())):`,
    '    try:',
    '        Client(address, security=security, timeout=5).close(); print(f"> dask {name}: CONNECTED")',
    '    except Exception as err: print(f"> dask {name}: refused ({type(err).__name__})")',
    'import ipyparallel',
    `info = json.loads(${JSON.stringify(ipp.file)})`,
    'path = os.path.join(tempfile.mkdtemp(), "stolen-client.json"); json.dump(info, open(path, "w"))',
    'try:',
    '    rc = ipyparallel.Client(path, timeout=5); print(f"> ipp with amy\'s key: {len(rc.ids)} engines")',
    'except Exception as err: print(f"> ipp with amy\'s key: refused ({type(err).__name__})")',
  ].join('\n');
}

test.serial('from ben\'s kernel, amy\'s engines, dashboards and Jupyter cannot be reached, even with her keys', async (t) => {
  t.timeout(5 * 60_000);
  const r = await record('amy');
  // The test (root) plays a leak: ben gets amy's IPython Parallel connection file, key included.
  const file = await readFile(join(clusterPaths(stateDir, 'amy').runtimeDir, 'ipython/profile_default/security/ipcontroller-client.json'), 'utf8');
  const ipp = { ...JSON.parse(file) as { registration: number; key: string }, file };
  const seen = outcomes(await kernel('ben', attacks(r, ipp)));
  t.log(seen);
  for (const name of ['jupyter', 'dask scheduler', 'dask dashboard', 'spark master', 'spark master ui', 'ipp controller']) {
    t.is(seen[`tcp ${name}`], 'ConnectionRefusedError', `tcp ${name}`);
  }
  for (const name of ['dask dashboard', 'spark ui', 'jupyter with amy\'s token']) t.is(seen[`http ${name}`], 'ConnectionRefusedError', `http ${name}`);
  t.regex(seen['dask tls']!, /^refused/);
  t.regex(seen['dask plain']!, /^refused/);
  t.regex(seen['ipp with amy\'s key']!, /^refused/);
  // The same attempts from amy's own kernel reach everything: it is the owner check that refuses ben.
  const own = outcomes(await kernel('amy', attacks(r, ipp)));
  for (const name of ['jupyter', 'dask scheduler', 'dask dashboard', 'spark master', 'spark master ui', 'ipp controller']) t.is(own[`tcp ${name}`], 'CONNECTED', `amy: tcp ${name}`);
  t.is(own['http dask dashboard'], '200');
  t.is(own['dask tls'], 'CONNECTED', 'amy\'s Client() with her cluster\'s certificate');
  t.regex(own['dask plain']!, /^refused/, 'even amy cannot speak to her scheduler without TLS');
  t.regex(own['ipp with amy\'s key']!, /engines$/);
});

test.serial('a server amy starts herself, on a port of her choosing, is refused to ben and open to amy', async (t) => {
  const started = await kernel('amy', [
    'import socket, subprocess, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()',
    'subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)',
    'for _ in range(100):',
    '    try: socket.create_connection(("127.0.0.1", port), timeout=1).close(); break',
    '    except OSError: time.sleep(0.1)  # the server\'s own start; nothing to subscribe to',
    'print("> port:", port)',
  ].join('\n'));
  const port = Number(outcomes(started).port);
  t.true(port > 0);
  const probe = [
    'import urllib.request',
    'try:',
    `    print("> get:", urllib.request.urlopen("http://127.0.0.1:${port}/", timeout=10).status)`,
    'except Exception as err: print(f"> get: {type(getattr(err, \'reason\', err)).__name__}")',
  ].join('\n');
  t.is(outcomes(await kernel('ben', probe)).get, 'ConnectionRefusedError');
  t.is(outcomes(await kernel('amy', probe)).get, '200');
});

test.serial('a certificate of another cluster does not open amy\'s Dask scheduler', async (t) => {
  // Ben's certificate and key, copied (by root) where amy's kernel can use them: another CA.
  const amy = (await record('amy')).account!;
  const ben = tlsPaths(clusterPaths(stateDir, 'ben').runtimeDir);
  const dir = await mkdtemp(join(tmpdir(), 'clusterhub-stolen-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [from, to] of [[ben.ca, 'ca.pem'], [ben.cert, 'cert.pem'], [ben.key, 'key.pem']] as const) {
    await copyFile(from, join(dir, to));
    await chown(join(dir, to), amy.uid, amy.gid);
  }
  await chown(dir, amy.uid, amy.gid);
  const r = await record('amy');
  const out = await kernel('amy', [
    'from distributed import Client',
    'from distributed.security import Security',
    `sec = Security(tls_ca_file="${dir}/ca.pem", tls_client_cert="${dir}/cert.pem", tls_client_key="${dir}/key.pem", require_encryption=True)`,
    'try:',
    `    Client("tls://127.0.0.1:${r.ports.dask}", security=sec, timeout=5).close(); print("> other cluster's certificate: CONNECTED")`,
    'except Exception as err: print(f"> other cluster\'s certificate: refused ({type(err).__name__})")',
  ].join('\n'));
  t.regex(outcomes(out)['other cluster\'s certificate']!, /^refused/);
});

test.serial('amy\'s own notebook uses Dask, IPython Parallel and Spark, and opens the dashboards through JupyterLab', async (t) => {
  t.timeout(5 * 60_000);
  const out = await kernel('amy', [
    'from dask.distributed import Client',
    'import dask.array as da, ipyparallel as ipp',
    'from pyspark.sql import SparkSession',
    'client = Client()',
    'print("> dask:", client.scheduler.address.split(":")[0], int(da.ones((1000, 1000), chunks=(250, 250)).sum().compute()))',
    'rc = ipp.Client()',
    'print("> ipp:", sum(rc[:].map_sync(lambda x: x * 2, range(10))))',
    'spark = SparkSession.builder.getOrCreate()',
    'print("> spark:", spark.sparkContext.getConf().get("spark.authenticate"), spark.sparkContext.parallelize(range(100), 2).sum())',
    'spark.stop()',
  ].join('\n'));
  const seen = outcomes(out);
  t.is(seen.dask, 'tls 1000000');
  t.is(seen.ipp, '90');
  t.is(seen.spark, 'true 4950');
  const links = (await hub!.backend.links?.('amy'))!;
  const token = hub!.store.getCluster('amy')!.jupyterToken;
  for (const [label, path] of Object.entries(links)) {
    const res = await fetch(`${hub!.publicUrl}/user/amy/${path}`, { headers: { Authorization: `token ${token}` } });
    await res.body?.cancel();
    t.is(res.status, 200, `${label} through JupyterLab`);
  }
  t.true(Object.keys(links).length >= 2, 'the Dask dashboard and the Spark master UI');
});

test.serial('a stop removes the student\'s firewall rules; a restarted hub puts back those of running clusters', async (t) => {
  t.timeout(3 * 60_000);
  const amy = accountName(PREFIX, 'amy');
  const ben = accountName(PREFIX, 'ben');
  t.true(firewallRules().includes(`clusterhub:${ben}`));
  await hub!.manager.stop('amy', { actor: 'test', reason: 'test' });
  t.false(firewallRules().includes(`clusterhub:${amy}`), 'amy\'s rules are gone with her cluster');
  await hub!.close();
  hub = undefined;
  // As after a reboot or a flush: the rules are gone while ben's cluster runs on.
  const benUid = (await lookupAccount(ben))!.uid;
  for (const line of firewallRules().split('\n').filter((l) => l.includes(`clusterhub:${ben}`))) {
    execFileSync('iptables', ['-w', '10', '-D', ...line.replace(/^-A /, '').replaceAll('"', '').split(' ')]);
  }
  t.false(firewallRules().includes(`clusterhub:${ben}`));
  await startHub();
  t.true(firewallRules().includes(`clusterhub:${ben}`), 'the restarted hub adopted ben\'s cluster and its rules');
  t.true(firewallRules().includes(`--uid-owner ${benUid}`));
});
