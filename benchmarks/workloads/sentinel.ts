// SET then GET of small keys through a sentinel target (loop.sentinel()) against the same
// windows on a plain connection to the same master, on a deployment the workload starts
// itself (harness/sentinel.ts: 1 master, 1 replica, 1 sentinel). What it measures is the
// price of following a master that can move: one wrapper sink per command, no extra hop.
import { Redis as Ioredis } from 'ioredis';
import { EventLoop, Future } from '../../lib/index.js';
import { startSentinels } from '../../harness/sentinel.js';
import { contestant, inWindows } from '../contestants.js';
import type { Endpoint, RunContext, Workload } from '../types.js';
import { expectEvery, fail, setgetKey, setgetValue } from '../verify.js';

const OPS_PER_KEY = 2;
const NAME = 'benchmaster';

async function windows(
  ctx: RunContext,
  set: (key: string, value: string) => PromiseLike<unknown>,
  get: (key: string) => PromiseLike<unknown>,
  all: (xs: PromiseLike<unknown>[]) => Promise<unknown[]>,
): Promise<{ ops: number }> {
  const { nonce } = ctx;
  await inWindows(ctx, async (start, k) => {
    const sets = new Array<PromiseLike<unknown>>(k);
    for (let i = 0; i < k; i++) sets[i] = set(setgetKey(start + i), setgetValue(nonce, start + i));
    expectEvery(await all(sets), 'OK', 'SET');
    const gets = new Array<PromiseLike<unknown>>(k);
    for (let i = 0; i < k; i++) gets[i] = get(setgetKey(start + i));
    const values = await all(gets);
    for (let i = 0; i < k; i++) if (values[i] !== setgetValue(nonce, start + i)) fail('GET', start + i, values[i], setgetValue(nonce, start + i));
  });
  return { ops: ctx.count * OPS_PER_KEY };
}

export const sentinelSetget: Workload = {
  id: 'sentinel',
  title: 'SET then GET through a sentinel target vs a plain connection to the same master, windows of 1000',
  description: 'per window: 1000 SETs awaited, then 1000 GETs of those keys awaited and compared; endpoints[0] is the master, endpoints[1] the sentinel; ops = SETs + GETs',
  count: 500_000,
  window: 1000,
  countLabel: 'keys (a SET and a GET each)',
  unit: 'SET or GET',
  baseline: 'redloop',
  floor: 'redloop',
  targets: [{ description: 'set/get windows through loop.sentinel(): within 5% of a plain connection to the same master', subject: 'redloop-sentinel', versus: ['redloop'], min: 0.95 }],
  async servers() {
    const dep = await startSentinels({ name: NAME, replicas: 1, sentinels: 1, quorum: 1 });
    const endpoints: Endpoint[] = [dep.master, dep.sentinels[0]!].map((s) => ({ host: s.host, port: s.port, db: 0, url: `redis://${s.host}:${s.port}` }));
    return { endpoints, stop: () => dep.stop() };
  },
  contestants: [
    contestant('redloop-sentinel', async (ctx) => {
      const loop = new EventLoop();
      const db = loop.sentinel({ sentinels: [ctx.endpoints[1]!.url], name: NAME });
      await db.whenReady();
      return {
        close: () => loop.close(),
        run: () => windows(ctx, (k, v) => loop.sendCommand(db, 'SET', k, v), (k) => loop.sendCommand(db, 'GET', k), (xs) => Future.all(xs as Future<unknown>[])),
      };
    }),
    contestant('redloop', async (ctx) => {
      const loop = new EventLoop();
      const conn = loop.connect(ctx.endpoints[0]!.url);
      await loop.sendCommand(conn, 'PING');
      return {
        close: () => loop.close(),
        run: () => windows(ctx, (k, v) => loop.sendCommand(conn, 'SET', k, v), (k) => loop.sendCommand(conn, 'GET', k), (xs) => Future.all(xs as Future<unknown>[])),
      };
    }, { label: 'redloop, plain connection to the master' }),
    contestant('ioredis-auto', async (ctx) => {
      const s = ctx.endpoints[1]!;
      const client = new Ioredis({ sentinels: [{ host: s.host, port: s.port }], name: NAME, enableAutoPipelining: true, lazyConnect: true });
      await client.connect();
      return {
        close: async () => { await client.quit(); },
        run: () => windows(ctx, (k, v) => client.set(k, v), (k) => client.get(k), (xs) => Promise.all(xs)),
      };
    }, { label: 'ioredis { sentinels } enableAutoPipelining' }),
  ],
};
