// Atomic blocks and explicit batches (issue 10):
// - multi: MULTI + 10 SETs + EXEC blocks, 100 blocks in flight per window, one connection;
//   redloop loop.multi() against ioredis multi().exec(), each block's replies checked.
// - cluster-batch: batches of 1000 SETs over a 3-master Redis Cluster the workload starts
//   (untimed, once per process); redloop loop.batch() (one call, every node in parallel)
//   against ioredis Cluster pipeline().exec(), which refuses pipelines that span nodes, so it
//   gets one pipeline per node, all exec()'d in parallel.
// - tx-contention: 20 callers incrementing one balance with optimistic transactions (WATCH,
//   GET, MULTI/SET/EXEC, retried until committed); redloop loop.transaction() against ioredis
//   watch() + multi().exec() with a client per caller. The final balance is checked.
import { Cluster as IoredisCluster } from 'ioredis';
import { EventLoop, keySlot } from '../../lib/index.js';
import { openIoredis, openRedloop } from '../clients.js';
import { inWindows } from '../contestants.js';
import { startCluster, type RedisCluster } from '../../harness/cluster.js';
import type { Contestant, RunContext, Workload } from '../types.js';
import { fail } from '../verify.js';

const BLOCK = 10;

function blockKey(i: number): string {
  return `mb:{${i % 1000}}:${i}`;
}

/** Commands in block `b` of a window of `k` (the last one of a short window may be shorter). */
function blockSize(k: number, b: number): number {
  return Math.min(BLOCK, k - b * BLOCK);
}

function checkBlock(replies: unknown, what: string, block: number, size: number): void {
  if (!Array.isArray(replies) || replies.length !== size) fail(what, block, replies, `${size} replies`);
  for (let i = 0; i < size; i++) {
    const r = replies[i];
    const v = Array.isArray(r) ? (r[0] === null ? r[1] : r[0]) : r; // ioredis: [err, value]
    if (v !== 'OK') fail(what, block, r, 'OK');
  }
}

const redloopMulti: Contestant = {
  id: 'redloop-multi', label: 'redloop loop.multi()', kind: 'redloop',
  async open(ctx: RunContext) {
    const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1));
    const conn = conns[0]!;
    return {
      close,
      run: async () => {
        await inWindows(ctx, async (start, k) => {
          const blocks = new Array<PromiseLike<unknown>>(Math.ceil(k / BLOCK));
          for (let b = 0; b < blocks.length; b++) {
            const cmds = new Array<[string, string, string]>(blockSize(k, b));
            for (let i = 0; i < cmds.length; i++) cmds[i] = ['SET', blockKey(start + b * BLOCK + i), ctx.nonce];
            blocks[b] = loop.multi(conn, cmds);
          }
          const replies = await Promise.all(blocks);
          for (let b = 0; b < replies.length; b++) checkBlock(replies[b], 'MULTI block', start / BLOCK + b, blockSize(k, b));
        });
        return { ops: ctx.count };
      },
    };
  },
};

const ioredisMulti: Contestant = {
  id: 'ioredis-multi', label: 'ioredis multi().exec()', kind: 'peer',
  async open(ctx: RunContext) {
    const { clients, close } = await openIoredis(ctx.endpoints.slice(0, 1), { autoPipelining: false });
    const client = clients[0]!;
    return {
      close,
      run: async () => {
        await inWindows(ctx, async (start, k) => {
          const blocks = new Array<Promise<unknown>>(Math.ceil(k / BLOCK));
          for (let b = 0; b < blocks.length; b++) {
            const m = client.multi();
            for (let i = 0; i < blockSize(k, b); i++) m.set(blockKey(start + b * BLOCK + i), ctx.nonce);
            blocks[b] = m.exec();
          }
          const replies = await Promise.all(blocks);
          for (let b = 0; b < replies.length; b++) checkBlock(replies[b], 'multi().exec()', start / BLOCK + b, blockSize(k, b));
        });
        return { ops: ctx.count };
      },
    };
  },
};

export const multiWorkload: Workload = {
  id: 'multi',
  title: 'MULTI blocks of 10 SETs, 100 blocks in flight, one connection',
  description: 'per window: 100 blocks of MULTI + 10 SETs + EXEC sent, all awaited, every reply checked; ops = SETs',
  count: 200_000,
  window: 1000,
  unit: 'SET inside a block',
  baseline: 'ioredis-multi',
  floor: 'ioredis-multi',
  targets: [{ description: 'multi blocks of 10: redloop >= 3x ioredis multi().exec()', subject: 'redloop-multi', versus: ['ioredis-multi'], min: 3 }],
  contestants: [redloopMulti, ioredisMulti],
};

// ---------------------------------------------------------------- cluster batch

let cluster: Promise<RedisCluster> | undefined;
/** One cluster for the process (stopped at exit by the harness, like every server it starts). */
function sharedCluster(): Promise<RedisCluster> {
  return cluster ??= startCluster({ masters: 3, replicasPerMaster: 0, extraArgs: ['--loglevel', 'warning'] });
}

const BATCH = 1000;

function batchKey(i: number): string {
  return `cb:${i}`;
}

const redloopBatch: Contestant = {
  id: 'redloop-batch', label: 'redloop loop.batch() on a cluster', kind: 'redloop',
  async open(ctx: RunContext) {
    const rc = await sharedCluster();
    const loop = new EventLoop();
    const c = loop.cluster([rc.seedUrl]);
    await c.whenReady();
    return {
      close: () => loop.close(),
      run: async () => {
        await inWindows(ctx, async (start, k) => {
          const cmds = new Array<[string, string, string]>(k);
          for (let i = 0; i < k; i++) cmds[i] = ['SET', batchKey(start + i), ctx.nonce];
          const outcomes = await loop.batch(c, cmds);
          for (let i = 0; i < k; i++) {
            const o = outcomes[i]!;
            if (!o.ok || o.value !== 'OK') fail('batch SET', start + i, o, 'OK');
          }
        });
        return { ops: ctx.count };
      },
    };
  },
};

const ioredisClusterPipelines: Contestant = {
  id: 'ioredis-cluster-pipelines', label: 'ioredis Cluster pipeline().exec(), one per node', kind: 'peer',
  note: 'ioredis refuses a pipeline that spans nodes: commands grouped by node, the pipelines exec()\'d in parallel',
  async open(ctx: RunContext) {
    const rc = await sharedCluster();
    const masters = rc.masters();
    const client = new IoredisCluster(masters.map((m) => ({ host: m.host, port: m.port })), { lazyConnect: true });
    await client.connect();
    await client.ping();
    // Which node serves which slot, as the cluster itself says (grouping is the caller's job).
    const shards = await rc.shards();
    const groupOfSlot = new Uint8Array(16384);
    shards.forEach((s, g) => { for (const [a, b] of s.slots) groupOfSlot.fill(g, a, b + 1); });
    return {
      close: async () => { await client.quit(); },
      run: async () => {
        await inWindows(ctx, async (start, k) => {
          const pipes = shards.map(() => client.pipeline());
          const index: number[][] = shards.map(() => []);
          for (let i = 0; i < k; i++) {
            const key = batchKey(start + i);
            const g = groupOfSlot[keySlot(key)]!;
            pipes[g]!.set(key, ctx.nonce);
            index[g]!.push(start + i);
          }
          const results = await Promise.all(pipes.map((p) => p.exec()));
          results.forEach((res, g) => res!.forEach(([err, v], j) => { if (err || v !== 'OK') fail('pipeline SET', index[g]![j]!, err ?? v, 'OK'); }));
        });
        return { ops: ctx.count };
      },
    };
  },
};

export const clusterBatchWorkload: Workload = {
  id: 'cluster-batch',
  title: 'batches of 1000 SETs on a 3-master Redis Cluster',
  description: 'per window: 1000 SETs over every master, all outcomes awaited and checked; ops = SETs',
  count: 200_000,
  window: BATCH,
  unit: 'SET',
  baseline: 'ioredis-cluster-pipelines',
  floor: 'ioredis-cluster-pipelines',
  targets: [{ description: 'cluster batch of 1000: redloop >= 3x ioredis Cluster pipelines', subject: 'redloop-batch', versus: ['ioredis-cluster-pipelines'], min: 3 }],
  async fill() { await sharedCluster(); },
  contestants: [redloopBatch, ioredisClusterPipelines],
};

// ---------------------------------------------------------------- contending transactions

/** Callers that increment one balance at the same time (issue 22). */
const CALLERS = 20;

function balanceKey(nonce: string): string {
  return `txc:{${nonce}}`;
}

/** Runs `callers` loops that together perform `count` increments, each through `increment`. */
async function contend(count: number, callers: number, increment: (caller: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: callers }, async (_, caller) => {
    while (next < count) {
      next++;
      await increment(caller);
    }
  }));
}

function checkBalance(what: string, got: unknown, count: number): void {
  if (String(got) !== String(count)) fail(what, count, got, String(count));
}

const redloopTransactions: Contestant = {
  id: 'redloop-transaction', label: 'redloop loop.transaction()', kind: 'redloop',
  note: 'callers of the loop naming the same key take turns: no aborts among them',
  async open(ctx: RunContext) {
    const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1));
    const conn = conns[0]!;
    const key = balanceKey(ctx.nonce);
    return {
      close,
      run: async () => {
        await loop.sendCommand(conn, 'DEL', key);
        await contend(ctx.count, CALLERS, () => loop.transaction(conn, key, async (tx) => {
          await tx.send(['WATCH', key]);
          const n = Number(await tx.send(['GET', key]));
          return tx.exec([['SET', key, n + 1]]);
        }).then(() => undefined));
        checkBalance('balance after the transactions', await loop.sendCommand(conn, 'GET', key), ctx.count);
        return { ops: ctx.count };
      },
    };
  },
};

const ioredisWatchMulti: Contestant = {
  id: 'ioredis-watch-multi', label: 'ioredis watch() + multi().exec(), a client per caller', kind: 'peer',
  note: 'each caller on a connection of its own (WATCH is per connection), retrying until EXEC succeeds',
  async open(ctx: RunContext) {
    const e = ctx.endpoints[0]!;
    const { clients, close } = await openIoredis(Array.from({ length: CALLERS }, () => e), { autoPipelining: false });
    const key = balanceKey(ctx.nonce);
    return {
      close,
      run: async () => {
        await clients[0]!.del(key);
        await contend(ctx.count, CALLERS, async (caller) => {
          const client = clients[caller]!;
          for (;;) {
            await client.watch(key);
            const n = Number(await client.get(key));
            if ((await client.multi().set(key, String(n + 1)).exec()) !== null) return;
          }
        });
        checkBalance('balance after the transactions', await clients[0]!.get(key), ctx.count);
        return { ops: ctx.count };
      },
    };
  },
};

export const txContentionWorkload: Workload = {
  id: 'tx-contention',
  title: `optimistic transactions: ${CALLERS} callers incrementing one balance`,
  description: `${CALLERS} callers at once, each increment WATCH + GET + MULTI/SET/EXEC, retried until it commits; the balance checked at the end; ops = increments`,
  count: 10_000,
  window: CALLERS,
  unit: 'increment',
  baseline: 'ioredis-watch-multi',
  floor: 'ioredis-watch-multi',
  targets: [{ description: `${CALLERS} contending callers: redloop transaction() >= 3x ioredis watch+multi`, subject: 'redloop-transaction', versus: ['ioredis-watch-multi'], min: 3 }],
  contestants: [redloopTransactions, ioredisWatchMulti],
};
