// SET then GET of small keys over a Redis Cluster of 3 masters the workload starts itself
// (harness/cluster.ts, as servers.ts reuses harness/redis.ts), in windows of 1000
// awaited futures. Keys spread over every master, so each window is three pipelines in
// parallel for a client that routes per node in one tick. Values carry the run's nonce.
import { Cluster as IoredisCluster } from 'ioredis';
import { createCluster } from 'redis';
import { EventLoop, Future } from '../../lib/index.js';
import { startCluster } from '../../harness/cluster.js';
import { contestant, inWindows } from '../contestants.js';
import type { Endpoint, RunContext, Workload } from '../types.js';
import { expectEvery, fail, setgetKey, setgetValue } from '../verify.js';

const OPS_PER_KEY = 2;

/** One window: k SETs awaited together, then k GETs of the same keys, compared. */
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

function ioredisCluster(autoPipelining: boolean) {
  return async (ctx: RunContext) => {
    const seed = ctx.endpoints[0]!;
    const client = new IoredisCluster([{ host: seed.host, port: seed.port }], { enableAutoPipelining: autoPipelining, lazyConnect: true });
    await client.connect();
    return {
      close: async () => { await client.quit(); },
      run: () => windows(ctx, (k, v) => client.set(k, v), (k) => client.get(k), (xs) => Promise.all(xs)),
    };
  };
}

export const clusterSetget: Workload = {
  id: 'cluster',
  title: 'SET then GET over a Redis Cluster of 3 masters, windows of 1000',
  description: 'per window: 1000 SETs awaited, then 1000 GETs of those keys awaited and compared, keys over every master; ops = SETs + GETs',
  count: 200_000,
  window: 1000,
  countLabel: 'keys (a SET and a GET each)',
  unit: 'SET or GET',
  baseline: 'ioredis-auto',
  floor: 'redloop',
  targets: [{ description: 'cluster set/get windows of 1000: redloop >= 4x ioredis Cluster auto-pipelining', subject: 'redloop', versus: ['ioredis-auto'], min: 4 }],
  async servers() {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 0, extraArgs: ['--loglevel', 'warning'] });
    const endpoints: Endpoint[] = cluster.masters().map((m) => ({ host: m.host, port: m.port, db: 0, url: m.url }));
    return { endpoints, stop: () => cluster.stop() };
  },
  contestants: [
    contestant('redloop', async (ctx) => {
      const loop = new EventLoop();
      const cluster = loop.cluster([ctx.endpoints[0]!.url]);
      await cluster.whenReady();
      await Promise.all(cluster.masterConnections.map((c) => loop.sendCommand(c, 'PING')));
      return {
        close: () => loop.close(),
        run: () => windows(ctx, (k, v) => loop.sendCommand(cluster, 'SET', k, v), (k) => loop.sendCommand(cluster, 'GET', k), (xs) => Future.all(xs as Future<unknown>[])),
      };
    }, { note: 'loop.cluster()' }),
    contestant('ioredis-auto', ioredisCluster(true), { note: 'new Cluster({ enableAutoPipelining: true })' }),
    contestant('ioredis', ioredisCluster(false), { note: 'new Cluster(), no auto-pipelining' }),
    contestant('node-redis', async (ctx) => {
      const errors: Error[] = [];
      const client = createCluster({ rootNodes: [{ url: ctx.endpoints[0]!.url }] });
      client.on('error', (err: Error) => errors.push(err));
      await client.connect();
      return {
        close: async () => {
          await client.close();
          if (errors.length > 0) throw new Error(`node-redis reported ${errors.length} error(s), first: ${errors[0]!.message}`);
        },
        run: () => windows(ctx, (k, v) => client.set(k, v), (k) => client.get(k), (xs) => Promise.all(xs)),
      };
    }, { note: 'createCluster()' }),
  ],
};
