// Mass insertion: N times `SET key:i value:i` on one connection, every reply read and
// checked. redloop's massInsert (encoding included) against fire-and-forget sendCommand,
// ioredis pipelines of 10,000 and `redis-cli --pipe` reading the same commands pre-encoded
// from a file (it does no encoding; we do).
//
// Every run starts from the same server state: the keys are unlinked before it (untimed),
// and an empty database is reset with FLUSHDB (atomically, only if it is empty), so no run
// inherits a hash table its predecessor grew.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Connection, EventLoop, MassInsertCommand } from '../../lib/index.js';
import { openIoredis, openRedloop } from '../clients.js';
import { contestant } from '../contestants.js';
import { encodeAscii } from '../raw.js';
import { raw, unlinkKeys } from '../servers.js';
import type { Contestant, Endpoint, RunContext, Session, Workload } from '../types.js';
import { checkPipelineResults, fail, VerificationError } from '../verify.js';
import { isMissingBinary, missingBinaryMessage, serverBinaries } from '../../harness/servers.js';

const execFileAsync = promisify(execFile);

/** ioredis pipelines are sent and awaited in chunks of this many commands. */
const IOREDIS_CHUNK = 10_000;

const key = (i: number) => `key:${i}`;
const value = (i: number) => `value:${i}`;

function* keys(count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield key(i);
}

export function* setCommands(count: number): Generator<MassInsertCommand> {
  for (let i = 0; i < count; i++) yield ['SET', key(i), value(i)];
}

/** Untimed: no key:* of ours left, and an empty database back to its initial size. */
async function clearKeys(e: Endpoint, count: number): Promise<void> {
  await unlinkKeys(e, keys(count));
  await raw(e, [['EVAL', "if redis.call('DBSIZE') == 0 then redis.call('FLUSHDB') end return 0", 0]]);
}

/** Timed, one round trip: the last SET landed (a run that lost commands fails here or on its counts). */
async function checkLastKey(loop: EventLoop, conn: Connection, count: number): Promise<void> {
  const got = await loop.sendCommand(conn, 'GET', key(count - 1));
  if (got !== value(count - 1)) fail('GET of the last key', count - 1, got, value(count - 1));
}

async function checkLastKeyRaw(e: Endpoint, count: number): Promise<void> {
  const [got] = await raw(e, [['GET', key(count - 1)]]);
  if (got !== value(count - 1)) fail('GET of the last key', count - 1, got, value(count - 1));
}

/** The pre-encoded input of redis-cli --pipe, written once per count (untimed) and removed at exit. */
const encodedFiles = new Map<number, string>();
let tmpDir: string | undefined;

function encodedFile(count: number): string {
  let file = encodedFiles.get(count);
  if (file !== undefined && fs.existsSync(file)) return file;
  tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'redloop-bench-pipe-'));
  file = path.join(tmpDir, `set-${count}.resp`);
  const fd = fs.openSync(file, 'w');
  try {
    const step = 100_000;
    for (let start = 0; start < count; start += step) {
      const end = Math.min(count, start + step);
      fs.writeSync(fd, encodeAscii((function* () { for (let i = start; i < end; i++) yield ['SET', key(i), value(i)]; })()));
    }
  } finally {
    fs.closeSync(fd);
  }
  encodedFiles.set(count, file);
  return file;
}

process.on('exit', () => {
  if (tmpDir !== undefined) fs.rmSync(tmpDir, { recursive: true, force: true });
});

let redisCliFound: Promise<string | undefined> | undefined;
export function redisCliMissing(): Promise<string | undefined> {
  const bins = serverBinaries();
  redisCliFound ??= execFileAsync(bins.cli, ['--version']).then(
    () => undefined,
    (err: unknown) => (isMissingBinary(err) ? missingBinaryMessage('cli', bins) : `${bins.cli} --version failed: ${(err as Error).message}`),
  );
  return redisCliFound;
}

function redisCliArgs(e: Endpoint): string[] {
  const args = ['-h', e.host, '-p', String(e.port)];
  if (e.username !== undefined) args.push('--user', e.username);
  if (e.password !== undefined) args.push('-a', e.password, '--no-auth-warning');
  if (e.db !== 0) args.push('-n', String(e.db));
  return args;
}

/** Runs redis-cli --pipe with the file as stdin; resolves to its summary counts. */
export function runRedisCliPipe(e: Endpoint, file: string): Promise<{ errors: number; replies: number }> {
  return new Promise((resolve, reject) => {
    const fd = fs.openSync(file, 'r');
    const child = spawn(serverBinaries().cli, [...redisCliArgs(e), '--pipe'], { stdio: [fd, 'pipe', 'pipe'] });
    fs.closeSync(fd);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /errors: (\d+), replies: (\d+)/.exec(out);
      if (!m) return reject(new Error(`redis-cli --pipe exited ${code} without a summary: ${out.trim()}`));
      resolve({ errors: Number(m[1]), replies: Number(m[2]) });
    });
  });
}

/** Opens a redloop connection after clearing the keys; every redloop contestant starts here. */
async function openCleared(ctx: RunContext): Promise<{ loop: EventLoop; conn: Connection; close(): Promise<void> }> {
  const e = ctx.endpoints[0]!;
  await clearKeys(e, ctx.count);
  const { loop, conns, close } = await openRedloop([e]);
  return { loop, conn: conns[0]!, close };
}

const massInsertContestant: Contestant = {
  id: 'redloop-massinsert',
  label: 'redloop loop.massInsert()',
  kind: 'redloop',
  note: 'generator of argument arrays, encoded by redloop; replies read and counted',
  async open(ctx): Promise<Session> {
    const { loop, conn, close } = await openCleared(ctx);
    return {
      close,
      run: async () => {
        const n = ctx.count;
        const report = await loop.massInsert(conn, setCommands(n));
        if (report.errors.count !== 0) throw new VerificationError(`massInsert: ${report.errors.count} error(s), first: ${report.errors.first[0]?.message}`);
        if (report.replies !== n) throw new VerificationError(`massInsert: ${report.replies} replies, expected ${n}`);
        await checkLastKey(loop, conn, n);
        return { ops: n };
      },
    };
  },
};

const unawaitedContestant: Contestant = {
  id: 'redloop-unawaited',
  label: 'redloop sendCommand, un-awaited',
  kind: 'redloop',
  note: 'one synchronous burst of fire-and-forget futures, only the last one awaited; errors counted by the loop',
  async open(ctx): Promise<Session> {
    const { loop, conn, close } = await openCleared(ctx);
    return {
      close,
      run: async () => {
        const n = ctx.count;
        const before = loop.unobservedErrors;
        const m0 = process.memoryUsage();
        let last;
        for (let i = 0; i < n; i++) last = loop.sendCommand(conn, 'SET', key(i), value(i));
        // The peak: every future and encoded command exists now, and again right after the
        // tick's flush (queued before this nextTick) turned them into bytes for the socket.
        const m1 = process.memoryUsage();
        const m2 = await new Promise<NodeJS.MemoryUsage>((resolve) => process.nextTick(() => resolve(process.memoryUsage())));
        const grew = (m: NodeJS.MemoryUsage) => m.heapUsed + m.external - m0.heapUsed - m0.external;
        const memory = {
          heapMB: Math.max(grew(m1), grew(m2)) / 1e6,
          rssMB: (Math.max(m1.rss, m2.rss) - m0.rss) / 1e6,
        };
        const reply = await last;
        if (reply !== 'OK') fail('SET', n - 1, reply, 'OK');
        // Unobserved errors are counted one macrotask after they arrive.
        await new Promise((resolve) => setImmediate(resolve));
        const errors = loop.unobservedErrors - before;
        if (errors !== 0) throw new VerificationError(`sendCommand: ${errors} un-awaited command(s) failed`);
        await checkLastKey(loop, conn, n);
        return { ops: n, memory };
      },
    };
  },
};

const ioredisPipeline: Contestant = contestant('ioredis-pipeline', async (ctx) => {
  const e = ctx.endpoints[0]!;
  await clearKeys(e, ctx.count);
  const { clients, close } = await openIoredis([e], { autoPipelining: false });
  const client = clients[0]!;
  return {
    close,
    run: async () => {
      const n = ctx.count;
      for (let start = 0; start < n; start += IOREDIS_CHUNK) {
        const end = Math.min(n, start + IOREDIS_CHUNK);
        const pipe = client.pipeline();
        for (let i = start; i < end; i++) pipe.set(key(i), value(i));
        checkPipelineResults(await pipe.exec(), 'OK', 'SET');
      }
      const got = await client.get(key(n - 1));
      if (got !== value(n - 1)) fail('GET of the last key', n - 1, got, value(n - 1));
      return { ops: n };
    },
  };
}, { note: `pipeline().exec() of ${IOREDIS_CHUNK.toLocaleString('en-US')} SETs, awaited in turn` });

const redisCliPipe: Contestant = {
  id: 'redis-cli-pipe',
  label: `${serverBinaries().family}-cli --pipe (C)`,
  kind: 'floor',
  external: true,
  note: 'the same commands pre-encoded in a file (no encoding); process start included; its error/reply counts checked',
  unavailable: redisCliMissing,
  async open(ctx): Promise<Session> {
    const e = ctx.endpoints[0]!;
    const file = encodedFile(ctx.count);
    await clearKeys(e, ctx.count);
    return {
      close: async () => {},
      run: async () => {
        const n = ctx.count;
        const { errors, replies } = await runRedisCliPipe(e, file);
        if (errors !== 0 || replies !== n) throw new VerificationError(`redis-cli --pipe: errors: ${errors}, replies: ${replies}; expected 0 and ${n}`);
        await checkLastKeyRaw(e, n);
        return { ops: n };
      },
    };
  },
};

export const massInsertWorkload: Workload = {
  id: 'massinsert',
  title: 'Mass insertion: SET key:i value:i, one connection',
  description: 'every command sent as fast as the server takes it, every reply read; the keys are cleared before each run',
  count: 1_000_000,
  window: 0,
  unit: 'SET',
  baseline: 'ioredis-pipeline',
  floor: 'redis-cli-pipe',
  targets: [{
    description: 'mass insert: massInsert takes at most 1.25x the time of redis-cli --pipe (>= 0.8x its rate)',
    subject: 'redloop-massinsert',
    versus: ['redis-cli-pipe'],
    min: 0.8,
  }, {
    description: 'un-awaited burst of SETs (1M in a full run): at least 800,000/s',
    subject: 'redloop-unawaited',
    versus: [],
    min: 800_000,
    measure: 'opsPerSec',
  }, {
    description: 'un-awaited burst of SETs (1M in a full run): at most 250 MB of growth (heap+buffers, peak)',
    subject: 'redloop-unawaited',
    versus: [],
    min: 250,
    measure: 'growthMB',
  }],
  async cleanup(endpoints, count) {
    await unlinkKeys(endpoints[0]!, keys(count));
  },
  contestants: [massInsertContestant, unawaitedContestant, ioredisPipeline, redisCliPipe],
};
