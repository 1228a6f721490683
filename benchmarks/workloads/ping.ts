// PING two ways: the Pypredis test.py shape (everything sent round-robin over the shards,
// every future awaited at the end) and windows of awaited futures on one connection.
import { Future } from '../../lib/index.js';
import { ReplyDecoder } from '../../lib/protocol/decoder.js';
import type { Redis } from 'ioredis';
import { openIoredis, openNodeRedis, openRedloop } from '../clients.js';
import { atLeast, contestant, inWindows } from '../contestants.js';
import { encodeRepeated, RawPipe } from '../raw.js';
import { runOnShards, runRedisBenchmark, splitEvenly } from '../redis-benchmark.js';
import type { Workload } from '../types.js';
import { checkPipelineResults, expectEvery, fail } from '../verify.js';
import { traced } from '../traced.js';

const PING = ['PING'];
const checkPong = (reply: unknown, i: number) => { if (reply !== 'PONG') fail('PING', i, reply, 'PONG'); };

export const pingPypredis: Workload = {
  id: 'ping',
  title: 'PING, Pypredis test.py shape',
  description: 'PINGs sent round-robin over all shards, every future awaited at the end',
  count: 100_000,
  window: 0,
  unit: 'PING',
  repsFactor: 2,
  baseline: 'ioredis-auto',
  floor: 'raw-floor',
  targets: [{ description: 'Pypredis ping shape: redloop faster than every peer', subject: 'redloop', versus: ['ioredis-auto', 'ioredis-pipeline', 'node-redis'], min: 1 }],
  contestants: [
    contestant('redloop', async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints);
      return {
        close,
        run: async () => {
          const n = ctx.count;
          const shards = conns.length;
          const futures = new Array(n);
          for (let i = 0; i < n; i++) futures[i] = loop.sendCommand(conns[i % shards]!, 'PING');
          expectEvery(await Future.all(futures), 'PONG', 'PING');
          return { ops: n };
        },
      };
    }),
    contestant('redloop-traced', async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints);
      return {
        close,
        run: () => traced(async () => {
          const n = ctx.count;
          const shards = conns.length;
          const futures = new Array(n);
          for (let i = 0; i < n; i++) futures[i] = loop.sendCommand(conns[i % shards]!, 'PING');
          expectEvery(await Future.all(futures), 'PONG', 'PING');
          return { ops: n };
        }),
      };
    }, { note: 'a subscriber on redloop:command: a duration per command' }),
    contestant('redloop-naive', async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints);
      return {
        close,
        run: async () => {
          const n = ctx.count;
          for (let i = 0; i < n; i++) checkPong(await loop.sendCommand(conns[i % conns.length]!, 'PING'), i);
          return { ops: n };
        },
      };
    }),
    contestant('ioredis-auto', async (ctx) => {
      const { clients, close } = await openIoredis(ctx.endpoints, { autoPipelining: true });
      return {
        close,
        run: async () => {
          const n = ctx.count;
          const futures = new Array<Promise<string>>(n);
          for (let i = 0; i < n; i++) futures[i] = clients[i % clients.length]!.ping();
          expectEvery(await Promise.all(futures), 'PONG', 'PING');
          return { ops: n };
        },
      };
    }),
    contestant('ioredis-pipeline', async (ctx) => {
      const { clients, close } = await openIoredis(ctx.endpoints, { autoPipelining: false });
      return {
        close,
        run: async () => {
          const n = ctx.count;
          const pipes = clients.map((c: Redis) => c.pipeline());
          for (let i = 0; i < n; i++) pipes[i % pipes.length]!.ping();
          const results = await Promise.all(pipes.map((p) => p.exec()));
          let ops = 0;
          for (const r of results) { checkPipelineResults(r, 'PONG', 'PING'); ops += r!.length; }
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
          const futures = new Array<Promise<string>>(n);
          for (let i = 0; i < n; i++) futures[i] = clients[i % clients.length]!.ping();
          expectEvery(await Promise.all(futures), 'PONG', 'PING');
          return { ops: n };
        },
      };
    }),
    contestant('raw-floor', async (ctx) => {
      const pipes = await Promise.all(ctx.endpoints.map((e) => RawPipe.open(e)));
      const per = splitEvenly(ctx.count, pipes.length);
      const bufs = per.map((k) => encodeRepeated(PING, k));
      return {
        close: async () => { await Promise.all(pipes.map((p) => p.close())); },
        run: async () => {
          await Promise.all(pipes.map((p, i) => (per[i]! > 0 ? p.exchange(bufs[i]!, per[i]!, checkPong) : undefined)));
          return { ops: ctx.count };
        },
      };
    }),
    contestant('redis-benchmark', async (ctx) => ({
      close: async () => {},
      // One redis-benchmark per shard at once, the whole share in one pipeline.
      run: async () => ({ ...(await runOnShards(ctx.endpoints, ctx.count, 100_000, PING)), verified: false }),
    }), { countFor: atLeast(200_000), note: 'a process per shard, -P = its share (<= 100k); self-reported, replies unchecked' }),
  ],
};

/** redloop on one connection: each window of PINGs sent, then awaited with `wait`. */
function redloopWindows(
  id: 'redloop' | 'redloop-promise-all' | 'redloop-await-each' | 'redloop-redis-parser' | 'redloop-resp2' | 'redloop-traced',
  wait: (futures: Future<string>[]) => Promise<unknown[]>,
  fastPath = true,
) {
  // redis-parser knows no RESP3; the RESP2 row is the same loop over protocol: 2.
  const protocol = id === 'redloop-redis-parser' || id === 'redloop-resp2' ? 2 : 3;
  const isTraced = id === 'redloop-traced';
  return contestant(id, async (ctx) => {
    const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1), { protocol });
    const conn = conns[0]!;
    const body = async () => {
      ReplyDecoder.fastPath = fastPath;
      try {
        await inWindows(ctx, async (start, k) => {
          const futures = new Array<Future<string>>(k);
          for (let i = 0; i < k; i++) futures[i] = loop.sendCommand(conn, 'PING');
          expectEvery(await wait(futures), 'PONG', 'PING');
        });
      } finally {
        ReplyDecoder.fastPath = true;
      }
      return { ops: ctx.count };
    };
    return { close, run: isTraced ? () => traced(body) : body };
  }, isTraced
    ? { note: 'a subscriber on redloop:command: a duration per command' }
    : fastPath ? (protocol === 2 ? { note: 'protocol: 2, no HELLO: what RESP3 costs' } : {}) : { note: 'the decoder\'s fast path off: what it is worth (RESP2)' });
}

export const pingWindows: Workload = {
  id: 'ping-window',
  title: 'PING in windows of 1000 awaited futures, one connection',
  description: 'send 1000 PINGs, await all 1000, repeat',
  count: 1_000_000,
  window: 1000,
  unit: 'PING',
  baseline: 'ioredis-auto',
  floor: 'raw-floor',
  targets: [
    { description: 'ping windows of 1000: redloop >= 5x ioredis auto-pipelining', subject: 'redloop', versus: ['ioredis-auto'], min: 5 },
    { description: 'ping windows of 1000: Future.all >= 0.7x the raw floor', subject: 'redloop', versus: ['raw-floor'], min: 0.7 },
    { description: 'ping windows of 1000: Promise.all >= 6x ioredis auto-pipelining', subject: 'redloop-promise-all', versus: ['ioredis-auto'], min: 6 },
    { description: 'ping windows of 1000: Promise.all >= 0.5x the raw floor', subject: 'redloop-promise-all', versus: ['raw-floor'], min: 0.5 },
    { description: 'ping windows of 1000: for ... await f >= 0.5x the raw floor', subject: 'redloop-await-each', versus: ['raw-floor'], min: 0.5 },
    { description: 'ping windows of 1000: RESP3 (the default) >= 0.9x RESP2', subject: 'redloop', versus: ['redloop-resp2'], min: 0.9 },
  ],
  contestants: [
    // The same windows awaited the three ways users write it.
    redloopWindows('redloop', (futures) => Future.all(futures)),
    redloopWindows('redloop-promise-all', (futures) => Promise.all(futures)),
    redloopWindows('redloop-await-each', async (futures) => {
      const replies = new Array<unknown>(futures.length);
      for (let i = 0; i < futures.length; i++) replies[i] = await futures[i];
      return replies;
    }),
    redloopWindows('redloop-resp2', (futures) => Future.all(futures)),
    redloopWindows('redloop-redis-parser', (futures) => Future.all(futures), false),
    redloopWindows('redloop-traced', (futures) => Future.all(futures)),
    contestant('redloop-naive', async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1));
      const conn = conns[0]!;
      return {
        close,
        run: async () => {
          for (let i = 0; i < ctx.count; i++) checkPong(await loop.sendCommand(conn, 'PING'), i);
          return { ops: ctx.count };
        },
      };
    }),
    contestant('ioredis-auto', async (ctx) => {
      const { clients, close } = await openIoredis(ctx.endpoints.slice(0, 1), { autoPipelining: true });
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const futures = new Array<Promise<string>>(k);
            for (let i = 0; i < k; i++) futures[i] = client.ping();
            expectEvery(await Promise.all(futures), 'PONG', 'PING');
          });
          return { ops: ctx.count };
        },
      };
    }),
    contestant('ioredis-pipeline', async (ctx) => {
      const { clients, close } = await openIoredis(ctx.endpoints.slice(0, 1), { autoPipelining: false });
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const pipe = client.pipeline();
            for (let i = 0; i < k; i++) pipe.ping();
            checkPipelineResults(await pipe.exec(), 'PONG', 'PING');
          });
          return { ops: ctx.count };
        },
      };
    }),
    contestant('node-redis', async (ctx) => {
      const { clients, close } = await openNodeRedis(ctx.endpoints.slice(0, 1));
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const futures = new Array<Promise<string>>(k);
            for (let i = 0; i < k; i++) futures[i] = client.ping();
            expectEvery(await Promise.all(futures), 'PONG', 'PING');
          });
          return { ops: ctx.count };
        },
      };
    }),
    contestant('raw-floor', async (ctx) => {
      const pipe = await RawPipe.open(ctx.endpoints[0]!);
      const full = encodeRepeated(PING, ctx.window);
      return {
        close: () => pipe.close(),
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            await pipe.exchange(k === ctx.window ? full : encodeRepeated(PING, k), k, checkPong);
          });
          return { ops: ctx.count };
        },
      };
    }),
    contestant('redis-benchmark', async (ctx) => ({
      close: async () => {},
      run: async () => {
        const [row] = await runRedisBenchmark(ctx.endpoints[0]!, { requests: ctx.count, pipeline: ctx.window, clients: 1, command: PING });
        return { ops: ctx.count, seconds: ctx.count / row!.rps, verified: false };
      },
    }), { countFor: atLeast(200_000), note: '-c 1 -P 1000; self-reported, replies unchecked' }),
  ],
};
