// SCAN of a 1M-key keyspace (MATCH on the bench's prefix, COUNT 1000 for everyone): redloop's
// iterator sends the next SCAN before handing a batch over; ioredis scanStream and a hand-written
// redloop loop (await each SCAN, then send the next) wait a round trip per batch.
import { Redis } from 'ioredis';
import { EventLoop, type Connection } from '../../lib/index.js';
import { openIoredis, openRedloop } from '../clients.js';
import { contestant } from '../contestants.js';
import type { Endpoint, Workload } from '../types.js';

const KEYS = 1_000_000;
const PREFIX = 'bench:scan:';
const MATCH = `${PREFIX}*`;
const COUNT = 1000;

function check(seen: number, keys: number): void {
  // SCAN may return a key more than once, never less than once.
  if (seen < keys) throw new Error(`SCAN returned ${seen} keys, expected at least ${keys}`);
}

const MARKER = 'bench:scanfill';

/**
 * Untimed, in each contestant's open(): makes the keyspace hold exactly `keys` bench keys
 * (the count depends on --quick/--scale, which fill() does not see). A marker key remembers
 * the last fill so repetitions do not refill.
 */
async function ensureKeys(e: Endpoint, keys: number): Promise<void> {
  const loop = new EventLoop();
  const conn = loop.connect(e.url);
  try {
    if (await loop.sendCommand(conn, 'GET', MARKER) === String(keys)) return;
    await removeKeys(loop, conn);
    const report = await loop.massInsert(conn, (function* () {
      for (let i = 0; i < keys; i += 1000) {
        const cmd = ['MSET'];
        for (let j = i; j < Math.min(keys, i + 1000); j++) cmd.push(`${PREFIX}${j}`, '1');
        yield cmd;
      }
    })());
    if (report.errors.count !== 0) throw new Error(`scan fill: ${report.errors.count} MSETs failed`);
    await loop.sendCommand(conn, 'SET', MARKER, String(keys));
  } finally {
    await loop.close();
  }
}

async function removeKeys(loop: EventLoop, conn: Connection): Promise<void> {
  for await (const batch of loop.scan(conn, { match: MATCH, count: 5000 }).batches()) await loop.send(conn, ['UNLINK', ...(batch as string[])]);
  await loop.sendCommand(conn, 'DEL', MARKER);
}

export const scanWorkload: Workload = {
  id: 'scan',
  title: `SCAN of ${KEYS.toLocaleString('en-US')} keys, COUNT ${COUNT}`,
  description: `${KEYS.toLocaleString('en-US')} keys ${MATCH} (MSET, untimed) on the first server, every one returned and counted; ops = keys returned`,
  count: KEYS,
  window: 0,
  unit: 'key',
  baseline: 'ioredis',
  floor: 'redloop-naive',
  targets: [{
    description: 'SCAN of 1M keys: redloop scan() >= 2x ioredis scanStream',
    subject: 'redloop',
    versus: ['ioredis'],
    min: 2,
  }],
  async cleanup(endpoints) {
    const loop = new EventLoop();
    await removeKeys(loop, loop.connect(endpoints[0]!.url));
    await loop.close();
  },
  contestants: [
    contestant('redloop', async (ctx) => {
      await ensureKeys(ctx.endpoints[0]!, ctx.count);
      const { loop, conns, close } = await openRedloop(ctx.endpoints);
      return {
        close,
        run: async () => {
          let seen = 0;
          for await (const batch of loop.scan(conns[0]!, { match: MATCH, count: COUNT }).batches()) seen += batch.length;
          check(seen, ctx.count);
          return { ops: seen };
        },
      };
    }, { label: 'redloop loop.scan()', note: 'loop.scan().batches(), next SCAN pipelined ahead' }),
    contestant('redloop-naive', async (ctx) => {
      await ensureKeys(ctx.endpoints[0]!, ctx.count);
      const { loop, conns, close } = await openRedloop(ctx.endpoints);
      return {
        close,
        run: async () => {
          let seen = 0;
          let cursor = '0';
          do {
            const [next, keys] = await loop.sendCommand<[string, string[]]>(conns[0]!, 'SCAN', cursor, 'MATCH', MATCH, 'COUNT', COUNT);
            cursor = next;
            seen += keys.length;
          } while (cursor !== '0');
          check(seen, ctx.count);
          return { ops: seen };
        },
      };
    }, { note: 'hand-written SCAN loop, one round trip per batch', countFor: (n) => n }),
    contestant('ioredis', async (ctx) => {
      await ensureKeys(ctx.endpoints[0]!, ctx.count);
      const { clients, close } = await openIoredis(ctx.endpoints, { autoPipelining: false });
      const client: Redis = clients[0]!;
      return {
        close,
        run: async () => {
          let seen = 0;
          for await (const keys of client.scanStream({ match: MATCH, count: COUNT })) seen += (keys as string[]).length;
          check(seen, ctx.count);
          return { ops: seen };
        },
      };
    }, { note: 'scanStream({ match, count })'}),
  ],
};
