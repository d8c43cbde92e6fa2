/**
 * A certificate authority per cluster for Dask's TLS: the scheduler, the workers and the
 * student's notebooks hold one certificate signed by it, and trust nothing else, so another
 * student's Client (with a certificate of their own, or none) cannot connect. The CA's key is
 * deleted once it has signed: nobody can mint another certificate for this cluster.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Files of a cluster's TLS identity (PEM). */
export interface ClusterTls {
  ca: string;
  cert: string;
  key: string;
}

/** Where the files go in a cluster's runtime directory. */
export function tlsPaths(runtimeDir: string): ClusterTls {
  const dir = join(runtimeDir, 'tls');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'cluster.pem'), key: join(dir, 'cluster-key.pem') };
}

/** Generate a fresh CA and the cluster's certificate with openssl (EC P-256, 0600 files). */
export async function makeClusterTls(runtimeDir: string, name: string): Promise<ClusterTls> {
  const paths = tlsPaths(runtimeDir);
  const dir = join(paths.ca, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const caKey = join(dir, 'ca-key.pem');
  const csr = join(dir, 'cluster.csr');
  const ext = join(dir, 'cluster.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const opts = { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', OPENSSL_CONF: '/dev/null' } };
  try {
    await run('openssl', ['req', '-x509', ...ec, '-keyout', caKey, '-out', paths.ca, '-days', '3650', '-subj', `/CN=clusterhub ${name} CA`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], opts);
    await run('openssl', ['req', ...ec, '-keyout', paths.key, '-out', csr, '-subj', `/CN=clusterhub ${name}`], opts);
    await writeFile(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n', { mode: 0o600 });
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', paths.ca, '-CAkey', caKey, '-set_serial', `0x${Date.now().toString(16)}`,
      '-days', '3650', '-extfile', ext, '-out', paths.cert], opts);
  } catch (err) {
    throw new Error(`could not make the cluster's TLS certificates with openssl: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`);
  } finally {
    await Promise.all([caKey, csr, ext].map((f) => rm(f, { force: true })));
  }
  return paths;
}
