// SCAN of 1M keys spread over a 3-master Redis Cluster the workload starts itself (as
// cluster.ts does), COUNT 1000 for everyone. redloop's loop.scan(cluster) scans every master at
// once by default; with parallel: 1 it takes them in turn. ioredis has no cluster-wide SCAN: its
// users call scanStream on each master (cluster.nodes('master')), in turn or all at once.
// Every contestant counts the distinct keys it was given and fails unless all of them came back.
import { Cluster as IoredisCluster } from 'ioredis';
import { EventLoop, type Cluster } from '../../lib/index.js';
import { startCluster } from '../../harness/cluster.js';
import type { Contestant, Endpoint, RunContext, Session, Workload } from '../types.js';
import { VerificationError } from '../verify.js';

const KEYS = 1_000_000;
const PREFIX = 'bench:scanc:';
const MATCH = `${PREFIX}*`;
const COUNT = 1000;
/** Outside MATCH: how many keys the last fill wrote, so repetitions do not refill. */
const MARKER = 'bench:scanc-fill';

/** Marks each key's index once: distinct keys counted at the cost of a slice and a parse. */
class Tally {
  private readonly seen: Uint8Array;
  private distinct = 0;
  private returned = 0;
  constructor(private readonly keys: number) {
    this.seen = new Uint8Array(keys);
  }
  add(batch: ReadonlyArray<string | Buffer>): void {
    this.returned += batch.length;
    for (const key of batch) {
      const i = Number(String(key).slice(PREFIX.length));
      if (!(i >= 0 && i < this.keys && Number.isInteger(i))) throw new VerificationError(`SCAN returned an unexpected key ${String(key)}`);
      if (this.seen[i] === 0) { this.seen[i] = 1; this.distinct++; }
    }
  }
  /** SCAN may return a key more than once, never less than once. */
  check(): { ops: number } {
    if (this.distinct !== this.keys) throw new VerificationError(`SCAN returned ${this.distinct} distinct keys, expected ${this.keys}`);
    return { ops: this.returned };
  }
}

/** Untimed, in each contestant's open(): the cluster holds exactly `keys` bench keys. */
async function ensureKeys(seed: Endpoint, keys: number): Promise<void> {
  const loop = new EventLoop();
  const c = loop.cluster([seed.url]);
  try {
    await c.whenReady();
    if (await loop.sendCommand(c, 'GET', MARKER) === String(keys)) return;
    // The workload's own servers: nothing else lives there.
    await Promise.all(c.masterConnections.map((m) => loop.sendCommand(m, 'FLUSHALL')));
    const report = await loop.massInsert(c, (function* () { for (let i = 0; i < keys; i++) yield ['SET', `${PREFIX}${i}`, '1']; })());
    if (report.errors.count !== 0) throw new Error(`scan-cluster fill: ${report.errors.count} SETs failed`);
    await loop.sendCommand(c, 'SET', MARKER, String(keys));
  } finally {
    await loop.close();
  }
}

function redloop(id: string, label: string, parallel: number | undefined, note: string): Contestant {
  return {
    id, label, kind: 'redloop', note,
    async open(ctx: RunContext): Promise<Session> {
      await ensureKeys(ctx.endpoints[0]!, ctx.count);
      const loop = new EventLoop();
      const c: Cluster = loop.cluster([ctx.endpoints[0]!.url]);
      await c.whenReady();
      await Promise.all(c.masterConnections.map((m) => loop.sendCommand(m, 'PING')));
      const options = parallel === undefined ? { match: MATCH, count: COUNT } : { match: MATCH, count: COUNT, parallel };
      return {
        close: () => loop.close(),
        run: async () => {
          const tally = new Tally(ctx.count);
          for await (const batch of loop.scan(c, options).batches()) tally.add(batch);
          return tally.check();
        },
      };
    },
  };
}

function ioredis(id: string, label: string, atOnce: boolean, note: string): Contestant {
  return {
    id, label, kind: 'peer', note,
    async open(ctx: RunContext): Promise<Session> {
      await ensureKeys(ctx.endpoints[0]!, ctx.count);
      const seed = ctx.endpoints[0]!;
      const client = new IoredisCluster([{ host: seed.host, port: seed.port }], { lazyConnect: true });
      await client.connect();
      const masters = client.nodes('master');
      await Promise.all(masters.map((m) => m.ping()));
      return {
        close: async () => { await client.quit(); },
        run: async () => {
          const tally = new Tally(ctx.count);
          const scanNode = async (node: (typeof masters)[number]) => {
            for await (const keys of node.scanStream({ match: MATCH, count: COUNT })) tally.add(keys as string[]);
          };
          if (atOnce) await Promise.all(masters.map(scanNode));
          else for (const node of masters) await scanNode(node);
          return tally.check();
        },
      };
    },
  };
}

export const scanClusterWorkload: Workload = {
  id: 'scan-cluster',
  title: `SCAN of ${KEYS.toLocaleString('en-US')} keys over a Redis Cluster of 3 masters, COUNT ${COUNT}`,
  description: `${KEYS.toLocaleString('en-US')} keys ${MATCH} (SET, untimed) over every master, every distinct key counted; ops = keys returned`,
  count: KEYS,
  window: 0,
  unit: 'key',
  baseline: 'ioredis-masters-in-turn',
  floor: 'ioredis-masters-at-once',
  targets: [{
    description: 'scan over a 3-master cluster: redloop >= 2x ioredis scanStream (masters in turn)',
    subject: 'redloop',
    versus: ['ioredis-masters-in-turn'],
    min: 2,
  }],
  async servers() {
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 0, extraArgs: ['--loglevel', 'warning'] });
    const endpoints: Endpoint[] = cluster.masters().map((m) => ({ host: m.host, port: m.port, db: 0, url: m.url }));
    return { endpoints, stop: () => cluster.stop() };
  },
  contestants: [
    redloop('redloop', 'redloop loop.scan(cluster)', undefined, 'loop.scan(cluster).batches(): every master at once (the default)'),
    redloop('redloop-parallel-1', 'redloop loop.scan(cluster, { parallel: 1 })', 1, 'the masters in turn'),
    ioredis('ioredis-masters-in-turn', 'ioredis Cluster: scanStream per master, in turn', false, "cluster.nodes('master'), one scanStream({ match, count }) after the other"),
    ioredis('ioredis-masters-at-once', 'ioredis Cluster: every master\'s scanStream at once', true, "cluster.nodes('master'), a scanStream each, Promise.all"),
  ],
};
