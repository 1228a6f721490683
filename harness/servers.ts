// Which server family the harness runs: the one place that chooses the binaries for the tests,
// the bench and the examples (standalone, cluster, sentinel, redis-cli, redis-benchmark).
//
//   (nothing set)                 redis-server, redis-cli, redis-benchmark on PATH
//   REDLOOP_SERVER=valkey         valkey-server, valkey-cli, valkey-benchmark from
//                                 ../shared/servers/valkey-8.0.1 next to the checkout
//   REDLOOP_SERVER_DIR=/path      the binaries in that folder (valkey-* when REDLOOP_SERVER=valkey
//                                 or when the folder holds valkey-server, else redis-*)
//   REDLOOP_SERVER=redis          redis-* (on PATH, or in REDLOOP_SERVER_DIR)
//
// The environment is read at every call, so a test may change it for one case and restore it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export type ServerFamily = 'redis' | 'valkey';

export type ServerTool = 'server' | 'cli' | 'benchmark';

export interface ServerBinaries {
  family: ServerFamily;
  /** The server (also runs a sentinel with --sentinel): an absolute path, or a bare name looked up on PATH. */
  server: string;
  /** redis-cli / valkey-cli (--cluster create, --pipe). */
  cli: string;
  /** redis-benchmark / valkey-benchmark (the bench's C reference). */
  benchmark: string;
  /** The folder they come from, or undefined for PATH. */
  dir: string | undefined;
  /** The setting that chose them, for messages: "default", "REDLOOP_SERVER=valkey", "REDLOOP_SERVER_DIR=/x". */
  chosenBy: string;
}

/** The repository root (the folder with package.json), from harness/ or dist/harness/. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`harness/servers.ts: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Where REDLOOP_SERVER=valkey looks by default: ../shared/servers/valkey-8.0.1 next to the checkout. */
export function defaultValkeyDir(): string {
  return path.resolve(repoRoot(), '../shared/servers/valkey-8.0.1');
}

/** The binaries the harness runs, as the environment chooses them (see the top of this file). */
export function serverBinaries(env: NodeJS.ProcessEnv = process.env): ServerBinaries {
  const wanted = env.REDLOOP_SERVER?.trim().toLowerCase() || undefined;
  if (wanted !== undefined && wanted !== 'redis' && wanted !== 'valkey') {
    throw new Error(`REDLOOP_SERVER=${env.REDLOOP_SERVER}: expected "redis" or "valkey" (or leave it unset for redis-server on PATH)`);
  }
  const given = env.REDLOOP_SERVER_DIR?.trim() || undefined;
  const dir = given !== undefined ? path.resolve(given) : wanted === 'valkey' ? defaultValkeyDir() : undefined;
  const family: ServerFamily = wanted
    ?? (dir !== undefined && fs.existsSync(path.join(dir, 'valkey-server')) ? 'valkey' : 'redis');
  const at = (name: string) => (dir === undefined ? name : path.join(dir, name));
  return {
    family,
    server: at(`${family}-server`),
    cli: at(`${family}-cli`),
    benchmark: at(`${family}-benchmark`),
    dir,
    chosenBy: given !== undefined ? `REDLOOP_SERVER_DIR=${given}` : wanted !== undefined ? `REDLOOP_SERVER=${wanted}` : 'default',
  };
}

/** What to say when a binary cannot be run: where it was looked for and how to get it. */
export function missingBinaryMessage(tool: ServerTool, bins: ServerBinaries = serverBinaries(), why?: string): string {
  const name = path.basename(bins[tool]);
  const purpose = why === undefined ? '' : ` (${why})`;
  if (bins.dir === undefined) {
    const pkg = tool === 'server' ? 'redis-server' : 'redis-tools';
    return `${name} not found on PATH${purpose}: install it (Debian: apt-get install ${pkg}) or run .ci/run; ` +
      'or set REDLOOP_SERVER=valkey / REDLOOP_SERVER_DIR=/path to run another server family';
  }
  return `${name} not found in ${bins.dir} (${bins.chosenBy})${purpose}: put the ${bins.family} binaries there ` +
    `(${bins.family === 'valkey' ? 'see ../shared/servers/README.md; ' : ''}REDLOOP_SERVER_DIR names another folder), ` +
    'or unset REDLOOP_SERVER and REDLOOP_SERVER_DIR to use redis-server on PATH';
}

/** True when the error is "no such executable" from spawn/execFile. */
export function isMissingBinary(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export interface ServerVersion {
  family: ServerFamily;
  /** The release, e.g. "7.0.15" or "8.0.1" (Valkey's own number, not the redis_version it reports). */
  version: string;
}

/** Parses `redis-server --version` / `valkey-server --version`. */
export function parseServerVersion(text: string): ServerVersion | undefined {
  const m = /^(Redis|Valkey) server v=(\S+)/m.exec(text);
  if (!m) return undefined;
  return { family: m[1]!.toLowerCase() as ServerFamily, version: m[2]! };
}

/** The family and release of the server binary the harness runs (`--version`); rejects with missingBinaryMessage. */
export async function serverVersion(bins: ServerBinaries = serverBinaries()): Promise<ServerVersion> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(bins.server, ['--version']));
  } catch (err) {
    if (isMissingBinary(err)) throw new Error(missingBinaryMessage('server', bins));
    throw err;
  }
  const parsed = parseServerVersion(stdout);
  if (parsed === undefined) throw new Error(`${bins.server} --version printed ${JSON.stringify(stdout.trim())}: neither Redis nor Valkey`);
  return parsed;
}

/**
 * The family and release a running server says it is, from its INFO server text: Valkey sets
 * server_name:valkey and valkey_version (its redis_version is the Redis release it is compatible
 * with, 7.2.4 on Valkey 8); Redis 7 has neither and its release is redis_version.
 */
export function serverFromInfo(info: string): ServerVersion & { redisVersion: string } {
  const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  const redisVersion = field('redis_version') ?? 'unknown';
  const name = field('server_name');
  if (name !== undefined && name !== 'redis') {
    return { family: name as ServerFamily, version: field(`${name}_version`) ?? redisVersion, redisVersion };
  }
  return { family: 'redis', version: redisVersion, redisVersion };
}
