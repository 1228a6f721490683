// Mass insertion across nodes: N times `SET key:i value:i` into 3 masters, every reply read.
// redloop's loop.massInsert(cluster | shardSet, ...) (encoding and routing by slot included)
// against the best a redis-cli user can do: the same commands pre-split per master by slot
// into one file each (untimed), then one `redis-cli --pipe` per master, all in parallel.
//
// The servers are this workload's own (a 3-master Redis Cluster, and 3 standalone servers
// for the shard set), started once on first use and stopped with the process; every run
// starts from FLUSHALL on each master (untimed).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventLoop, keySlot, shardSlotRanges, type Cluster, type ShardSet } from '../../lib/index.js';
import { startCluster, type RedisCluster } from '../../harness/cluster.js';
import { startShards, type RedisServer } from '../../harness/redis.js';
import { serverBinaries } from '../../harness/servers.js';
import { encodeAscii } from '../raw.js';
import type { Contestant, Endpoint, Session, Workload } from '../types.js';
import { VerificationError, fail } from '../verify.js';
import { redisCliMissing, runRedisCliPipe, setCommands } from './massinsert.js';

const key = (i: number) => `key:${i}`;
const value = (i: number) => `value:${i}`;

/** A set of 3 masters: where each slot lives, how to reach each master, how to empty them. */
interface Masters {
  endpoints: Endpoint[];
  /** Index into endpoints of each slot's master. */
  masterOfSlot: Uint8Array;
  flush(): Promise<void>;
}

function endpoint(host: string, port: number): Endpoint {
  return { host, port, db: 0, url: `redis://${host}:${port}` };
}

let clusterStarted: Promise<RedisCluster> | undefined;
let shardsStarted: Promise<RedisServer[]> | undefined;

async function clusterMasters(): Promise<Masters & { seed: string }> {
  const cluster = await (clusterStarted ??= startCluster({ masters: 3 }));
  const shards = await cluster.shards();
  const masterOfSlot = new Uint8Array(16384);
  shards.forEach((s, i) => { for (const [first, last] of s.slots) masterOfSlot.fill(i, first, last + 1); });
  return {
    seed: cluster.seedUrl,
    endpoints: shards.map((s) => endpoint(s.master.host, s.master.port)),
    masterOfSlot,
    flush: async () => { await Promise.all(cluster.masters().map((m) => m.command('FLUSHALL'))); },
  };
}

async function shardSetMasters(): Promise<Masters & { servers: RedisServer[] }> {
  const servers = await (shardsStarted ??= startShards(3, { args: ['--loglevel', 'warning'] }));
  const masterOfSlot = new Uint8Array(16384);
  shardSlotRanges(3).forEach(([first, last], i) => masterOfSlot.fill(i, first, last + 1));
  return {
    servers,
    endpoints: servers.map((s) => endpoint(s.host, s.port)),
    masterOfSlot,
    flush: async () => { await Promise.all(servers.map((s) => s.command('FLUSHALL'))); },
  };
}

/** The commands pre-split per master, one RESP file each: written once per layout and count, removed at exit. */
const splitFiles = new Map<string, string[]>();
let tmpDir: string | undefined;

function preSplit(layout: string, masters: Masters, count: number): string[] {
  const id = `${layout}-${count}`;
  const known = splitFiles.get(id);
  if (known !== undefined && known.every((f) => fs.existsSync(f))) return known;
  tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'redloop-bench-split-'));
  const files = masters.endpoints.map((_, i) => path.join(tmpDir!, `${id}-${i}.resp`));
  const fds = files.map((f) => fs.openSync(f, 'w'));
  try {
    const step = 100_000;
    for (let start = 0; start < count; start += step) {
      const parts: string[][][] = masters.endpoints.map(() => []);
      for (let i = start; i < Math.min(count, start + step); i++) parts[masters.masterOfSlot[keySlot(key(i))]!]!.push(['SET', key(i), value(i)]);
      parts.forEach((p, m) => fs.writeSync(fds[m]!, encodeAscii(p)));
    }
  } finally {
    fds.forEach((fd) => fs.closeSync(fd));
  }
  splitFiles.set(id, files);
  return files;
}

process.on('exit', () => {
  if (tmpDir !== undefined) fs.rmSync(tmpDir, { recursive: true, force: true });
});

/** Timed, one round trip: the last SET landed on its master. */
async function checkLastKey(loop: EventLoop, target: Cluster | ShardSet, count: number): Promise<void> {
  const got = await loop.sendCommand(target, 'GET', key(count - 1));
  if (got !== value(count - 1)) fail('GET of the last key', count - 1, got, value(count - 1));
}

function redloopContestant(kind: 'cluster' | 'shards'): Contestant {
  return {
    id: `redloop-massinsert-${kind}`,
    label: `redloop loop.massInsert(${kind === 'cluster' ? 'cluster' : 'shardSet'})`,
    kind: 'redloop',
    note: 'one generator of argument arrays, encoded and routed by slot by redloop; every reply read and counted',
    unavailable: redisCliMissing,
    async open(ctx): Promise<Session> {
      const masters = kind === 'cluster' ? await clusterMasters() : await shardSetMasters();
      await masters.flush();
      const loop = new EventLoop();
      const target = 'seed' in masters ? loop.cluster([masters.seed]) : loop.shards(masters.servers.map((s) => s.url));
      await target.whenReady();
      return {
        close: () => loop.close(),
        run: async () => {
          const n = ctx.count;
          const report = await loop.massInsert(target, setCommands(n));
          if (report.errors.count !== 0) throw new VerificationError(`massInsert: ${report.errors.count} error(s), first: ${report.errors.first[0]?.message}`);
          if (report.replies !== n) throw new VerificationError(`massInsert: ${report.replies} replies, expected ${n}`);
          await checkLastKey(loop, target, n);
          return { ops: n };
        },
      };
    },
  };
}

function redisCliContestant(kind: 'cluster' | 'shards'): Contestant {
  return {
    id: `redis-cli-pipe-x3-${kind}`,
    label: `${serverBinaries().family}-cli --pipe x3, in parallel (C)`,
    kind: 'floor',
    external: true,
    note: 'the commands pre-split per master by slot into 3 files (untimed); one redis-cli --pipe per master; process start included',
    unavailable: redisCliMissing,
    async open(ctx): Promise<Session> {
      const masters = kind === 'cluster' ? await clusterMasters() : await shardSetMasters();
      const files = preSplit(kind, masters, ctx.count);
      await masters.flush();
      return {
        close: async () => {},
        run: async () => {
          const n = ctx.count;
          const counts = await Promise.all(masters.endpoints.map((e, i) => runRedisCliPipe(e, files[i]!)));
          const errors = counts.reduce((a, c) => a + c.errors, 0);
          const replies = counts.reduce((a, c) => a + c.replies, 0);
          if (errors !== 0 || replies !== n) throw new VerificationError(`redis-cli --pipe x3: errors: ${errors}, replies: ${replies}; expected 0 and ${n}`);
          return { ops: n };
        },
      };
    },
  };
}

function workload(kind: 'cluster' | 'shards'): Workload {
  const where = kind === 'cluster' ? 'a 3-master Redis Cluster' : 'a shard set of 3 standalone servers';
  return {
    id: `massinsert-${kind}`,
    title: `Mass insertion across nodes: SET key:i value:i into ${where}`,
    description: 'every command sent as fast as each master takes it, every reply read; each master is flushed before each run',
    count: 1_000_000,
    window: 0,
    unit: 'SET',
    baseline: `redis-cli-pipe-x3-${kind}`,
    floor: `redis-cli-pipe-x3-${kind}`,
    targets: [{
      description: `mass insert into ${where}: massInsert takes at most 1.25x the time of 3 parallel redis-cli --pipe on pre-split files (>= 0.8x their rate)`,
      subject: `redloop-massinsert-${kind}`,
      versus: [`redis-cli-pipe-x3-${kind}`],
      min: 0.8,
    }],
    contestants: [redloopContestant(kind), redisCliContestant(kind)],
  };
}

export const massInsertClusterWorkload = workload('cluster');
export const massInsertShardsWorkload = workload('shards');
