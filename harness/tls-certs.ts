// A throwaway CA and a server certificate for 127.0.0.1 / localhost, made with openssl once
// per process and removed at exit.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface TlsMaterial {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate (PEM), for a client's `ca` option. */
  ca: Buffer;
}

let pending: Promise<TlsMaterial> | undefined;
let made: TlsMaterial | undefined;

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error('openssl not found on PATH: it is needed to make the TLS test certificates (Debian: apt-get install openssl)');
    }
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

async function generate(): Promise<TlsMaterial> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-tls-'));
  made = { dir, caFile: '', certFile: '', keyFile: '', ca: Buffer.alloc(0) };
  const days = '3';
  await openssl(dir, ['req', '-x509', '-new', '-nodes', '-newkey', 'rsa:2048', '-sha256', '-days', days,
    '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=redloop test CA']);
  await openssl(dir, ['req', '-new', '-nodes', '-newkey', 'rsa:2048', '-sha256',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  await fs.promises.writeFile(path.join(dir, 'server.ext'), [
    'subjectAltName = IP:127.0.0.1, DNS:localhost',
    'basicConstraints = CA:FALSE',
    'keyUsage = digitalSignature, keyEncipherment',
    'extendedKeyUsage = serverAuth',
    '',
  ].join('\n'));
  await openssl(dir, ['x509', '-req', '-sha256', '-days', days, '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-CAcreateserial', '-out', 'server.crt', '-extfile', 'server.ext']);
  const caFile = path.join(dir, 'ca.crt');
  made = {
    dir,
    caFile,
    certFile: path.join(dir, 'server.crt'),
    keyFile: path.join(dir, 'server.key'),
    ca: await fs.promises.readFile(caFile),
  };
  return made;
}

/** The CA and server certificate, generated on first use and shared by every TLS server. */
export function tlsMaterial(): Promise<TlsMaterial> {
  if (!pending) {
    pending = generate();
    pending.catch(() => { pending = undefined; });
  }
  return pending;
}

/** Remove the generated files (called by the root hook and at process exit). */
export function removeTlsMaterial(): void {
  if (made) fs.rmSync(made.dir, { recursive: true, force: true });
  made = undefined;
  pending = undefined;
}

process.on('exit', removeTlsMaterial);
