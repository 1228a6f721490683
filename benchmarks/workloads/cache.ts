// The client-side cache: GET of 1,000 hot keys answered from memory (redloop { cache: true },
// node-redis 6 with RESP3 and its clientSideCache) against the same GETs over the wire (redloop
// uncached, ioredis), once in windows of 1000 and once awaiting each GET in turn; and SET windows
// on a connection with the cache on against one without (the cost of dropping written keys).
// Every reply is compared with the value this run wrote (the run's nonce is in it).
import v8 from 'node:v8';
import vm from 'node:vm';
import { createClient } from 'redis';
import { EventLoop, Future, type Connection } from '../../lib/index.js';
import { openIoredis, openNodeRedis, openRedloop } from '../clients.js';
import { contestant, inWindows } from '../contestants.js';
import { encodeAscii, RawPipe } from '../raw.js';
import { unlinkKeys } from '../servers.js';
import type { Endpoint, Workload } from '../types.js';
import { expectEvery, fail } from '../verify.js';

const HOT = 1000;
const hotKey = (i: number): string => `cache:hot:${i}`;
const hotValue = (nonce: string, i: number): string => `v:${nonce}:${i}`;
const CACHED = { cache: true } as const;

/** Untimed: writes the hot keys with this run's values. */
async function writeHot(endpoint: Endpoint, nonce: string): Promise<void> {
  const { loop, conns, close } = await openRedloop([endpoint]);
  await Future.all(Array.from({ length: HOT }, (_, i) => loop.sendCommand(conns[0]!, 'SET', hotKey(i), hotValue(nonce, i))));
  await close();
}

async function openCached(endpoint: Endpoint): Promise<{ loop: EventLoop; conn: Connection; close(): Promise<void> }> {
  const loop = new EventLoop();
  const conn = loop.connect({ url: endpoint.url, cache: {} });
  await loop.sendCommand(conn, 'PING');
  return { loop, conn, close: () => loop.close() };
}

/**
 * The hot keys and this run's values, built before the clock starts (an application that reads
 * the same keys again holds their strings; building a key costs more than a cache hit).
 */
interface Hot {
  keys: string[];
  values: string[];
}
function hotSet(nonce: string): Hot {
  return { keys: Array.from({ length: HOT }, (_, i) => hotKey(i)), values: Array.from({ length: HOT }, (_, i) => hotValue(nonce, i)) };
}

/** The n-th GET reads hot key n % HOT; checks it got that key's value. */
function checkHot(hot: Hot, n: number, value: unknown): void {
  const i = n % HOT;
  if (value !== hot.values[i]) fail('GET', n, value, hot.values[i]);
}

/**
 * Bytes per cache entry, measured once: heap growth (after a GC when --expose-gc is on, else
 * as measured) while 100,000 entries are read into a fresh cache, and the cache's own estimate.
 */
let bytesNote: string | undefined;
function exposedGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}
async function measureBytesPerEntry(endpoint: Endpoint): Promise<string> {
  if (bytesNote !== undefined) return bytesNote;
  const { loop, conn, close } = await openCached(endpoint);
  const n = 100_000;
  const gc = exposedGc();
  gc?.();
  const before = v8.getHeapStatistics().used_heap_size;
  for (let base = 0; base < n; base += 10_000) {
    await Future.all(Array.from({ length: 10_000 }, (_, i) => loop.send(conn, ['GET', `cache:bytes:${base + i}`], CACHED)));
  }
  gc?.();
  const grown = v8.getHeapStatistics().used_heap_size - before;
  const s = conn.cache!.stats;
  bytesNote = `bytes per entry (GET of a missing key, key ~16 chars): ~${Math.round(grown / s.entries)} heap, ${Math.round(s.bytes / s.entries)} estimated by the cache`;
  process.stderr.write(`cache: ${bytesNote}\n`);
  await close();
  return bytesNote;
}

const redloopCachedWindows = contestant('redloop-cached', async (ctx) => {
  await writeHot(ctx.endpoints[0]!, ctx.nonce);
  const hot = hotSet(ctx.nonce);
  await measureBytesPerEntry(ctx.endpoints[0]!);
  const { loop, conn, close } = await openCached(ctx.endpoints[0]!);
  await Future.all(Array.from({ length: HOT }, (_, i) => loop.send(conn, ['GET', hot.keys[i]!], CACHED))); // warm: the first read of each is a miss
  return {
    close,
    run: async () => {
      await inWindows(ctx, async (start, k) => {
        const gets = new Array<Future<unknown>>(k);
        for (let i = 0; i < k; i++) gets[i] = loop.send(conn, ['GET', hot.keys[(start + i) % HOT]!], CACHED);
        const values = await Future.all(gets);
        for (let i = 0; i < k; i++) checkHot(hot, start + i, values[i]);
      });
      return { ops: ctx.count };
    },
  };
});

function nodeRedisCached() {
  return async (url: string) => {
    const errors: Error[] = [];
    const client = createClient({ url, RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0, evictPolicy: 'LRU' } });
    client.on('error', (err: Error) => errors.push(err));
    await client.connect();
    return {
      client,
      close: async () => {
        await client.close();
        if (errors.length > 0) throw new Error(`node-redis reported ${errors.length} error(s), first: ${errors[0]!.message}`);
      },
    };
  };
}

export const cacheWindows: Workload = {
  id: 'cache',
  title: 'GET of 1,000 hot keys from the client-side cache, windows of 1000, one connection',
  description: 'GETs of 1,000 hot keys in turn, 1000 awaited together, every reply compared; cached clients have read each key once before the clock starts',
  // Large: a hit costs tens of ns, and a short run would time the JIT's warm-up, not the cache.
  count: 10_000_000,
  window: 1000,
  unit: 'GET',
  repsFactor: 2,
  baseline: 'redloop',
  floor: 'raw-floor',
  targets: [
    { description: 'cached GET windows: redloop cache >= 10x redloop uncached', subject: 'redloop-cached', versus: ['redloop'], min: 10 },
    { description: 'cached GET windows: redloop cache >= 3x node-redis clientSideCache', subject: 'redloop-cached', versus: ['node-redis-cache'], min: 3 },
  ],
  async cleanup(endpoints) {
    await unlinkKeys(endpoints[0]!, Array.from({ length: HOT }, (_, i) => hotKey(i)));
  },
  contestants: [
    redloopCachedWindows,
    contestant('redloop', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1));
      const conn = conns[0]!;
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const gets = new Array<Future<unknown>>(k);
            for (let i = 0; i < k; i++) gets[i] = loop.sendCommand(conn, 'GET', hot.keys[(start + i) % HOT]!);
            const values = await Future.all(gets);
            for (let i = 0; i < k; i++) checkHot(hot, start + i, values[i]);
          });
          return { ops: ctx.count };
        },
      };
    }, { countFor: (n) => Math.max(100_000, Math.round(n / 10)), note: 'uncached; runs 1/10 of the count' }),
    contestant('node-redis-cache', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { client, close } = await nodeRedisCached()(ctx.endpoints[0]!.url);
      await Promise.all(Array.from({ length: HOT }, (_, i) => client.get(hot.keys[i]!)));
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const gets = new Array<Promise<unknown>>(k);
            for (let i = 0; i < k; i++) gets[i] = client.get(hot.keys[(start + i) % HOT]!);
            const values = await Promise.all(gets);
            for (let i = 0; i < k; i++) checkHot(hot, start + i, values[i]);
          });
          return { ops: ctx.count };
        },
      };
    }, { countFor: (n) => Math.max(100_000, Math.round(n / 20)), note: 'RESP: 3, clientSideCache { ttl: 0, maxEntries: 0, LRU }; runs 1/20 of the count' }),
    contestant('ioredis-auto', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { clients, close } = await openIoredis(ctx.endpoints.slice(0, 1), { autoPipelining: true });
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const gets = new Array<Promise<unknown>>(k);
            for (let i = 0; i < k; i++) gets[i] = client.get(hot.keys[(start + i) % HOT]!);
            const values = await Promise.all(gets);
            for (let i = 0; i < k; i++) checkHot(hot, start + i, values[i]);
          });
          return { ops: ctx.count };
        },
      };
    }, { countFor: (n) => Math.max(100_000, Math.round(n / 50)), note: 'no client-side cache; runs 1/50 of the count' }),
    contestant('raw-floor', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const pipe = await RawPipe.open(ctx.endpoints[0]!);
      const window = encodeAscii(Array.from({ length: ctx.window }, (_, i) => ['GET', hotKey(i % HOT)]));
      const n = ctx.count;
      return {
        close: () => pipe.close(),
        run: async () => {
          for (let start = 0; start < n; start += ctx.window) {
            await pipe.exchange(window, ctx.window, (value, i) => checkHot(hot, i, value));
          }
          return { ops: n - (n % ctx.window) };
        },
      };
    }, { countFor: (n) => Math.max(100_000, Math.round(n / 10)), note: 'over the wire, pre-encoded; runs 1/10 of the count' }),
  ],
};

export const cacheOneAtATime: Workload = {
  id: 'cache-one',
  title: 'GET of 1,000 hot keys from the client-side cache, each awaited in turn',
  description: 'one GET at a time (parallelism 1, as rueidis measures it), every reply compared',
  count: 5_000_000,
  window: 1,
  unit: 'GET',
  baseline: 'redloop-naive',
  floor: 'redloop-naive',
  targets: [
    { description: 'cached GET one at a time: redloop cache >= 100x redloop uncached', subject: 'redloop-cached', versus: ['redloop-naive'], min: 100 },
    { description: 'cached GET one at a time: redloop cache faster than node-redis clientSideCache', subject: 'redloop-cached', versus: ['node-redis-cache'], min: 1 },
  ],
  contestants: [
    contestant('redloop-cached', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { loop, conn, close } = await openCached(ctx.endpoints[0]!);
      await Future.all(Array.from({ length: HOT }, (_, i) => loop.send(conn, ['GET', hot.keys[i]!], CACHED)));
      return {
        close,
        run: async () => {
          for (let n = 0; n < ctx.count; n++) checkHot(hot, n, await loop.send(conn, ['GET', hot.keys[n % HOT]!], CACHED));
          return { ops: ctx.count };
        },
      };
    }),
    contestant('redloop-naive', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1));
      const conn = conns[0]!;
      return {
        close,
        run: async () => {
          for (let n = 0; n < ctx.count; n++) checkHot(hot, n, await loop.sendCommand(conn, 'GET', hot.keys[n % HOT]!));
          return { ops: ctx.count };
        },
      };
    }, { countFor: (n) => Math.max(5_000, Math.round(n / 500)), note: 'uncached, awaits every GET; runs 1/500 of the count' }),
    contestant('node-redis-cache', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { client, close } = await nodeRedisCached()(ctx.endpoints[0]!.url);
      await Promise.all(Array.from({ length: HOT }, (_, i) => client.get(hot.keys[i]!)));
      return {
        close,
        run: async () => {
          for (let n = 0; n < ctx.count; n++) checkHot(hot, n, await client.get(hot.keys[n % HOT]!));
          return { ops: ctx.count };
        },
      };
    }, { countFor: (n) => Math.max(50_000, Math.round(n / 20)), note: 'RESP: 3, clientSideCache; runs 1/20 of the count' }),
    contestant('ioredis-auto', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { clients, close } = await openIoredis(ctx.endpoints.slice(0, 1), { autoPipelining: true });
      const client = clients[0]!;
      return {
        close,
        run: async () => {
          for (let n = 0; n < ctx.count; n++) checkHot(hot, n, await client.get(hot.keys[n % HOT]!));
          return { ops: ctx.count };
        },
      };
    }, { countFor: (n) => Math.max(5_000, Math.round(n / 500)), note: 'no client-side cache, awaits every GET; runs 1/500 of the count' }),
  ],
};

/** SET windows on a connection whose node has a cache (own writes drop their keys) against one without. */
export const cacheSetWindows: Workload = {
  id: 'cache-set',
  title: 'SET windows of 1000 with the client-side cache on and off',
  description: 'SETs of 1,000 hot keys in windows of 1000; with the cache on, each SET drops its key from the cache first (the keys were read through it)',
  count: 2_000_000,
  window: 1000,
  unit: 'SET',
  // Two SET loops a few percent apart: more repetitions, so a busy neighbour does not decide the median.
  repsFactor: 2,
  baseline: 'redloop-cache-off',
  floor: 'redloop-cache-off',
  targets: [{ description: 'SET windows with the cache on >= 0.9x without', subject: 'redloop', versus: ['redloop-cache-off'], min: 0.9 }],
  async cleanup(endpoints) {
    await unlinkKeys(endpoints[0]!, Array.from({ length: HOT }, (_, i) => hotKey(i)));
  },
  contestants: [
    contestant('redloop', async (ctx) => {
      await writeHot(ctx.endpoints[0]!, ctx.nonce);
      const hot = hotSet(ctx.nonce);
      const { loop, conn, close } = await openCached(ctx.endpoints[0]!);
      await Future.all(Array.from({ length: HOT }, (_, i) => loop.send(conn, ['GET', hot.keys[i]!], CACHED)));
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const sets = new Array<Future<unknown>>(k);
            for (let i = 0; i < k; i++) sets[i] = loop.sendCommand(conn, 'SET', hot.keys[(start + i) % HOT]!, hot.values[(start + i) % HOT]!);
            expectEvery(await Future.all(sets), 'OK', 'SET');
          });
          return { ops: ctx.count };
        },
      };
    }, { label: 'redloop, cache on (cache: {})' }),
    contestant('redloop-cache-off', async (ctx) => {
      const hot = hotSet(ctx.nonce);
      const { loop, conns, close } = await openRedloop(ctx.endpoints.slice(0, 1));
      const conn = conns[0]!;
      return {
        close,
        run: async () => {
          await inWindows(ctx, async (start, k) => {
            const sets = new Array<Future<unknown>>(k);
            for (let i = 0; i < k; i++) sets[i] = loop.sendCommand(conn, 'SET', hot.keys[(start + i) % HOT]!, hot.values[(start + i) % HOT]!);
            expectEvery(await Future.all(sets), 'OK', 'SET');
          });
          return { ops: ctx.count };
        },
      };
    }),
  ],
};

// node-redis without its cache is the 'node-redis' contestant of the other workloads.
void openNodeRedis;
