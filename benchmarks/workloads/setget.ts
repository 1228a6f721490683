// SET then GET of small keys on one connection, in windows of 1000 awaited futures: every
// window of SETs is followed by GETs of the same keys, and each value carries the run's
// nonce, so a GET can only pass if this run's SET happened.
import { Future } from '../../lib/index.js';
import { openIoredis, openNodeRedis, openRedloop } from '../clients.js';
import { atLeast, contestant, inWindows } from '../contestants.js';
import { encodeAscii, RawPipe } from '../raw.js';
import { runRedisBenchmark } from '../redis-benchmark.js';
import { unlinkKeys } from '../servers.js';
import type { Workload } from '../types.js';
import { checkPipelineResults, expectEvery, fail, setgetKey, setgetValue } from '../verify.js';

/** ops counted: one SET and one GET per key. */
const OPS_PER_KEY = 2;
/** redis-benchmark runs at least this many keys (its clock counts milliseconds). */
const REDIS_BENCHMARK_MIN = 100_000;

function* benchKeys(count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield setgetKey(i);
}

/** Keys redis-benchmark -r N writes: key:%012d. */
function* redisBenchmarkKeys(count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield `key:${String(i).padStart(12, '0')}`;
}

export const setget: Workload = {
  id: 'setget',
  title: 'SET then GET of small keys, windows of 1000, one connection',
  description: 'per window: 1000 SETs awaited, then 1000 GETs of those keys awaited and compared; ops = SETs + GETs',
  count: 500_000,
  window: 1000,
  countLabel: 'keys (a SET and a GET each)',
  unit: 'SET or GET',
  baseline: 'ioredis-auto',
  floor: 'raw-floor',
  targets: [
    { description: 'set/get windows of 1000: redloop >= 4x ioredis auto-pipelining', subject: 'redloop', versus: ['ioredis-auto'], min: 4 },
    { description: 'set/get windows of 1000: RESP3 (the default) >= 0.9x RESP2', subject: 'redloop', versus: ['redloop-resp2'], min: 0.9 },
  ],
  async cleanup(endpoints, count) {
    await unlinkKeys(endpoints[0]!, benchKeys(count));
    await unlinkKeys(endpoints[0]!, redisBenchmarkKeys(Math.max(count, REDIS_BENCHMARK_MIN)));
  },
  contestants: [
    ...(['redloop', 'redloop-resp2'] as const).map((id) =>
    contestant(id, async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1), { protocol: id === 'redloop-resp2' ? 2 : 3 });
      const conn = conns[0]!;
      return {
        close,
        run: async () => {
          const { nonce } = ctx;
          await inWindows(ctx, async (start, k) => {
            const sets = new Array(k);
            for (let i = 0; i < k; i++) sets[i] = loop.sendCommand(conn, 'SET', setgetKey(start + i), setgetValue(nonce, start + i));
            expectEvery(await Future.all(sets), 'OK', 'SET');
            const gets = new Array(k);
            for (let i = 0; i < k; i++) gets[i] = loop.sendCommand(conn, 'GET', setgetKey(start + i));
            const values = await Future.all(gets);
            for (let i = 0; i < k; i++) if (values[i] !== setgetValue(nonce, start + i)) fail('GET', start + i, values[i], setgetValue(nonce, start + i));
          });
          return { ops: ctx.count * OPS_PER_KEY };
        },
      };
    }, id === 'redloop-resp2' ? { note: 'protocol: 2, no HELLO: what RESP3 costs' } : {})),
    contestant('redloop-naive', async (ctx) => {
      const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1));
      const conn = conns[0]!;
      return {
        close,
        run: async () => {
          const { nonce } = ctx;
          await inWindows(ctx, async (start, k) => {
            for (let i = start; i < start + k; i++) {
              const ok = await loop.sendCommand(conn, 'SET', setgetKey(i), setgetValue(nonce, i));
              if (ok !== 'OK') fail('SET', i, ok, 'OK');
            }
            for (let i = start; i < start + k; i++) {
              const value = await loop.sendCommand(conn, 'GET', setgetKey(i));
              if (value !== setgetValue(nonce, i)) fail('GET', i, value, setgetValue(nonce, i));
            }
          });
          return { ops: ctx.count * OPS_PER_KEY };
        },
      };
    }),
    contestant('ioredis-auto', async (ctx) => {
      const { clients, close } = await openIoredis(ctx.endpoints.slice(0, 1), { autoPipelining: true });
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          const { nonce } = ctx;
          await inWindows(ctx, async (start, k) => {
            const sets = new Array<Promise<unknown>>(k);
            for (let i = 0; i < k; i++) sets[i] = client.set(setgetKey(start + i), setgetValue(nonce, start + i));
            expectEvery(await Promise.all(sets), 'OK', 'SET');
            const gets = new Array<Promise<string | null>>(k);
            for (let i = 0; i < k; i++) gets[i] = client.get(setgetKey(start + i));
            const values = await Promise.all(gets);
            for (let i = 0; i < k; i++) if (values[i] !== setgetValue(nonce, start + i)) fail('GET', start + i, values[i], setgetValue(nonce, start + i));
          });
          return { ops: ctx.count * OPS_PER_KEY };
        },
      };
    }),
    contestant('ioredis-pipeline', async (ctx) => {
      const { clients, close } = await openIoredis(ctx.endpoints.slice(0, 1), { autoPipelining: false });
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          const { nonce } = ctx;
          await inWindows(ctx, async (start, k) => {
            const sets = client.pipeline();
            for (let i = 0; i < k; i++) sets.set(setgetKey(start + i), setgetValue(nonce, start + i));
            checkPipelineResults(await sets.exec(), 'OK', 'SET');
            const gets = client.pipeline();
            for (let i = 0; i < k; i++) gets.get(setgetKey(start + i));
            checkPipelineResults(await gets.exec(), (value, i) => {
              if (value !== setgetValue(nonce, start + i)) fail('GET', start + i, value, setgetValue(nonce, start + i));
            }, 'GET');
          });
          return { ops: ctx.count * OPS_PER_KEY };
        },
      };
    }),
    contestant('node-redis', async (ctx) => {
      const { clients, close } = await openNodeRedis(ctx.endpoints.slice(0, 1));
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          const { nonce } = ctx;
          await inWindows(ctx, async (start, k) => {
            const sets = new Array<Promise<unknown>>(k);
            for (let i = 0; i < k; i++) sets[i] = client.set(setgetKey(start + i), setgetValue(nonce, start + i));
            expectEvery(await Promise.all(sets), 'OK', 'SET');
            const gets = new Array<Promise<unknown>>(k);
            for (let i = 0; i < k; i++) gets[i] = client.get(setgetKey(start + i));
            const values = await Promise.all(gets);
            for (let i = 0; i < k; i++) if (values[i] !== setgetValue(nonce, start + i)) fail('GET', start + i, values[i], setgetValue(nonce, start + i));
          });
          return { ops: ctx.count * OPS_PER_KEY };
        },
      };
    }),
    contestant('raw-floor', async (ctx) => {
      const pipe = await RawPipe.open(ctx.endpoints[0]!);
      const { count: n, window: w, nonce } = ctx;
      // Pre-encoded before the clock starts: that is what makes it the floor.
      const windows: { start: number; k: number; sets: Buffer; gets: Buffer }[] = [];
      for (let start = 0; start < n; start += w) {
        const k = Math.min(w, n - start);
        const sets: string[][] = [];
        const gets: string[][] = [];
        for (let i = start; i < start + k; i++) {
          sets.push(['SET', setgetKey(i), setgetValue(nonce, i)]);
          gets.push(['GET', setgetKey(i)]);
        }
        windows.push({ start, k, sets: encodeAscii(sets), gets: encodeAscii(gets) });
      }
      return {
        close: () => pipe.close(),
        run: async () => {
          for (const { start, k, sets, gets } of windows) {
            await pipe.exchange(sets, k, (reply, i) => { if (reply !== 'OK') fail('SET', start + i, reply, 'OK'); });
            await pipe.exchange(gets, k, (value, i) => {
              if (value !== setgetValue(nonce, start + i)) fail('GET', start + i, value, setgetValue(nonce, start + i));
            });
          }
          return { ops: n * OPS_PER_KEY };
        },
      };
    }),
    contestant('redis-benchmark', async (ctx) => ({
      close: async () => {},
      run: async () => {
        const rows = await runRedisBenchmark(ctx.endpoints[0]!, {
          requests: ctx.count, pipeline: ctx.window, clients: 1, tests: ['set', 'get'], keyspace: ctx.count,
          dataSize: setgetValue(ctx.nonce, ctx.count - 1).length,
        });
        const set = rows.find((r) => r.test === 'SET');
        const get = rows.find((r) => r.test === 'GET');
        if (!set || !get) throw new Error(`redis-benchmark: expected SET and GET rows, got ${JSON.stringify(rows)}`);
        return { ops: ctx.count * OPS_PER_KEY, seconds: ctx.count / set.rps + ctx.count / get.rps, verified: false };
      },
    }), { countFor: atLeast(REDIS_BENCHMARK_MIN), note: '-t set,get -c 1 -P 1000 -r count; self-reported, replies unchecked' }),
  ],
};
