// SUNION of two 1000-member sets on every shard, replies of 1500 members: a workload where
// reply parsing, not round trips, is the cost.
import { Future } from '../../lib/index.js';
import { ReplyDecoder } from '../../lib/protocol/decoder.js';
import { openIoredis, openNodeRedis, openRedloop } from '../clients.js';
import { atLeast, contestant } from '../contestants.js';
import { encodeRepeated, RawPipe } from '../raw.js';
import { runOnShards, splitEvenly } from '../redis-benchmark.js';
import { raw, unlinkKeys } from '../servers.js';
import type { Workload } from '../types.js';
import { checkPipelineResults, checkSunion } from '../verify.js';

const SUNION = ['SUNION', 'set1', 'set2'];

function range(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => String(from + i));
}

function checkAll(replies: unknown[]): void {
  for (let i = 0; i < replies.length; i++) checkSunion(replies[i], i);
}

export const sunion: Workload = {
  id: 'sunion',
  title: 'SUNION set1 set2 spread over the shards',
  description: 'each shard holds set1 = 0..999 and set2 = 500..1499; every reply has 1500 members',
  count: 1000,
  window: 0,
  unit: 'SUNION',
  repsFactor: 2,
  baseline: 'ioredis-auto',
  floor: 'raw-floor',
  targets: [{
    description: 'sunion over the shards: redloop >= 2.5x ioredis, one client per shard, Promise.all',
    subject: 'redloop',
    versus: ['ioredis', 'ioredis-auto'],
    min: 2.5,
  }],
  async fill(endpoints) {
    await Promise.all(endpoints.map(async (e) => {
      const [, a, b] = await raw(e, [['DEL', 'set1', 'set2'], ['SADD', 'set1', ...range(0, 1000)], ['SADD', 'set2', ...range(500, 1500)]]);
      if (a !== 1000 || b !== 1000) throw new Error(`sunion fill on ${e.host}:${e.port}: SADD answered ${String(a)}, ${String(b)}`);
    }));
  },
  async cleanup(endpoints) {
    await Promise.all(endpoints.map((e) => unlinkKeys(e, ['set1', 'set2'])));
  },
  contestants: [
    ...(['redloop', 'redloop-resp2'] as const).map((id) =>
    contestant(id, async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints, { protocol: id === 'redloop-resp2' ? 2 : 3 });
      return {
        close,
        run: async () => {
          const n = ctx.count;
          const futures = new Array(n);
          for (let i = 0; i < n; i++) futures[i] = loop.sendCommand(conns[i % conns.length]!, 'SUNION', 'set1', 'set2');
          checkAll(await Future.all(futures));
          return { ops: n };
        },
      };
    }, id === 'redloop-resp2' ? { note: 'protocol: 2, no HELLO: what RESP3 costs' } : {})),
    contestant('redloop-redis-parser', async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints, { protocol: 2 }); // redis-parser knows no RESP3
      return {
        close,
        run: async () => {
          // What the decoder's fast path is worth: every chunk through redis-parser, as before it.
          ReplyDecoder.fastPath = false;
          try {
            const n = ctx.count;
            const futures = new Array(n);
            for (let i = 0; i < n; i++) futures[i] = loop.sendCommand(conns[i % conns.length]!, 'SUNION', 'set1', 'set2');
            checkAll(await Future.all(futures));
            return { ops: n };
          } finally {
            ReplyDecoder.fastPath = true;
          }
        },
      };
    }, { note: 'the decoder\'s fast path off: what it is worth' }),
    contestant('redloop-naive', async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints);
      return {
        close,
        run: async () => {
          for (let i = 0; i < ctx.count; i++) checkSunion(await loop.sendCommand(conns[i % conns.length]!, 'SUNION', 'set1', 'set2'), i);
          return { ops: ctx.count };
        },
      };
    }),
    ...([['ioredis', false], ['ioredis-auto', true]] as const).map(([id, autoPipelining]) =>
      contestant(id, async (ctx) => {
        const { clients, close } = await openIoredis(ctx.endpoints, { autoPipelining });
        return {
          close,
          run: async () => {
            const n = ctx.count;
            const futures = new Array<Promise<string[]>>(n);
            for (let i = 0; i < n; i++) futures[i] = clients[i % clients.length]!.sunion('set1', 'set2');
            checkAll(await Promise.all(futures));
            return { ops: n };
          },
        };
      }, { note: 'a client per shard, Promise.all' })),
    contestant('ioredis-pipeline', async (ctx) => {
      const { clients, close } = await openIoredis(ctx.endpoints, { autoPipelining: false });
      return {
        close,
        run: async () => {
          const pipes = clients.map((c) => c.pipeline());
          for (let i = 0; i < ctx.count; i++) pipes[i % pipes.length]!.sunion('set1', 'set2');
          let ops = 0;
          for (const r of await Promise.all(pipes.map((p) => p.exec()))) ops += checkPipelineResults(r, checkSunion, 'SUNION');
          return { ops };
        },
      };
    }),
    contestant('node-redis', async (ctx) => {
      const { clients, close } = await openNodeRedis(ctx.endpoints);
      return {
        close,
        run: async () => {
          const n = ctx.count;
          const futures = new Array<Promise<unknown>>(n);
          for (let i = 0; i < n; i++) futures[i] = clients[i % clients.length]!.sUnion(['set1', 'set2']);
          checkAll(await Promise.all(futures));
          return { ops: n };
        },
      };
    }),
    contestant('raw-floor', async (ctx) => {
      const pipes = await Promise.all(ctx.endpoints.map((e) => RawPipe.open(e)));
      const per = splitEvenly(ctx.count, pipes.length);
      const bufs = per.map((k) => encodeRepeated(SUNION, k));
      return {
        close: async () => { await Promise.all(pipes.map((p) => p.close())); },
        run: async () => {
          await Promise.all(pipes.map((p, i) => (per[i]! > 0 ? p.exchange(bufs[i]!, per[i]!, checkSunion) : undefined)));
          return { ops: ctx.count };
        },
      };
    }),
    contestant('redis-benchmark', async (ctx) => ({
      close: async () => {},
      run: async () => ({ ...(await runOnShards(ctx.endpoints, ctx.count, 100_000, SUNION)), verified: false }),
    }), { countFor: atLeast(2000), note: 'a process per shard, -P = its share; self-reported, replies unchecked' }),
  ],
};
