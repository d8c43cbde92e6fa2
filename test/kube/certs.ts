import { execFile } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const generateKeyPairAsync = promisify(generateKeyPair);

/** Paths of the key material one test plane uses. */
export interface PlaneCerts {
  caCert: string;
  caKey: string;
  /** One pair for serving, client auth (O=system:masters) and kwok's kubelet endpoint, as kwokctl does. */
  adminCert: string;
  adminKey: string;
  /** Service-account token signing pair (RSA, PEM). */
  saKey: string;
  saPub: string;
}

/** Common name of the admin certificate (user name in Kubernetes, front-proxy client name). */
export const ADMIN_CN = 'clusterhub-admin';

/** Names the admin certificate must answer to: loopback and the in-cluster service names. */
const SERVING_NAMES = [
  'DNS:localhost',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'DNS:kubernetes.default.svc.cluster.local',
  'IP:127.0.0.1',
  'IP:10.96.0.1',
];

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`, { cause: error });
  }
}

/**
 * Writes a fresh CA, an admin certificate signed by it and a service-account key pair
 * into `dir`. EC P-256 keys for the certificates keep this under a second.
 */
export async function generateCerts(dir: string): Promise<PlaneCerts> {
  const p = (name: string) => join(dir, name);
  const certs: PlaneCerts = {
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  const sa = generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });

  await openssl(
    [
      'req', '-x509', ...ec, '-keyout', certs.caKey, '-out', certs.caCert, '-days', '30',
      '-subj', '/CN=clusterhub-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
  await openssl(
    ['req', ...ec, '-keyout', certs.adminKey, '-out', p('admin.csr'), '-subj', `/O=system:masters/CN=${ADMIN_CN}`],
    dir,
  );
  await writeFile(
    p('admin.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${SERVING_NAMES.join(',')}`,
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'x509', '-req', '-in', p('admin.csr'), '-CA', certs.caCert, '-CAkey', certs.caKey,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '30',
      '-extfile', p('admin.ext'), '-out', certs.adminCert,
    ],
    dir,
  );

  const { publicKey, privateKey } = await sa;
  await writeFile(certs.saKey, privateKey, { mode: 0o600 });
  await writeFile(certs.saPub, publicKey);
  return certs;
}

/**
 * A client certificate signed by the plane's CA, e.g. a kubelet's (O=system:nodes,
 * CN=system:node:NAME, which the Node authorizer and NodeRestriction recognise).
 * Returns the paths of `${name}.crt` and `${name}.key` in `dir`.
 */
export async function generateClientCert(
  dir: string,
  ca: Pick<PlaneCerts, 'caCert' | 'caKey'>,
  name: string,
  subject: { cn: string; o?: string },
): Promise<{ cert: string; key: string }> {
  const p = (file: string) => join(dir, file);
  const subj = `${subject.o ? `/O=${subject.o}` : ''}/CN=${subject.cn}`;
  await openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subj],
    dir,
  );
  await writeFile(p(`${name}.ext`), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  await openssl(
    [
      'x509', '-req', '-in', p(`${name}.csr`), '-CA', ca.caCert, '-CAkey', ca.caKey,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '30', '-extfile', p(`${name}.ext`), '-out', p(`${name}.crt`),
    ],
    dir,
  );
  return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
}
