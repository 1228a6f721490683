// What callers of redloop's loop.cluster(), ioredis Cluster (enableAutoPipelining) and
// node-redis createCluster (the versions in devDependencies) see while a real Redis Cluster
// (3 masters, 1 replica each, harness/cluster.ts) is resharded live, fails over by hand
// (CLUSTER FAILOVER) and loses a master to SIGKILL, with writers running INCR on 3000 counters
// in windows of 500. Counted: commands rejected to the caller (by the first word of the error),
// whether each rejection says if the command was written, commands still pending after 15 s,
// and counters that end above their acknowledged INCRs (a re-sent written command) or below
// them (a lost one; after a SIGKILL also Redis' asynchronous replication).
// Not part of the test suite: run `npx tsc -p . && node docs/peers-on-cluster-failure.mjs`.
import { createRequire } from 'node:module';
import { EventLoop } from '../../dist/lib/index.js';
import { startCluster } from '../../dist/harness/cluster.js';

const require = createRequire(import.meta.url);
const { Cluster: IoCluster } = require('ioredis');
const { createCluster } = require('redis');
const versions = `ioredis ${require('ioredis/package.json').version}, node-redis ${require('redis/package.json').version}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const COUNTERS = 3000;
const WINDOW = 500;
const HUNG_MS = 15_000;

const clients = {
  redloop: {
    open: async (seed) => {
      const loop = new EventLoop();
      const cluster = loop.cluster([seed.url]);
      await cluster.whenReady();
      return { incr: (k) => loop.sendCommand(cluster, 'INCR', k), close: () => loop.close() };
    },
  },
  'ioredis Cluster (autopipelining)': {
    open: async (seed) => {
      const c = new IoCluster([{ host: seed.host, port: seed.port }], { enableAutoPipelining: true, lazyConnect: true });
      c.on('error', () => {});
      await c.connect();
      return { incr: (k) => c.incr(k), close: () => c.quit() };
    },
  },
  'node-redis createCluster': {
    open: async (seed) => {
      const c = createCluster({ rootNodes: [{ url: seed.url }] });
      c.on('error', () => {});
      await c.connect();
      return { incr: (k) => c.incr(k), close: () => c.close() };
    },
  },
};

function startWriters(client, prefix) {
  const acked = new Int32Array(COUNTERS);
  const errors = new Map(); // first word -> count
  let failed = 0; let saysWritten = 0; let hung = 0; let stopping = false; let next = 0;
  const keys = Array.from({ length: COUNTERS }, (_, i) => `${prefix}:${i}`);
  const one = (i) => {
    let timer;
    const p = Promise.resolve(client.incr(keys[i])).then(() => { acked[i]++; }, (e) => {
      failed++;
      if (typeof e?.written === 'boolean') saysWritten++;
      const word = `${e?.name ?? 'Error'} "${String(e?.message ?? e).replace(/\d+(\.\d+)*(:\d+)?/g, 'N').slice(0, 50)}"`;
      errors.set(word, (errors.get(word) ?? 0) + 1);
    });
    return Promise.race([p, new Promise((r) => { timer = setTimeout(() => { hung++; r(); }, HUNG_MS); })]).finally(() => clearTimeout(timer));
  };
  const run = (async () => {
    while (!stopping) {
      const batch = [];
      for (let j = 0; j < WINDOW; j++) batch.push(one(next++ % COUNTERS));
      await Promise.all(batch);
    }
  })();
  return {
    keys, acked,
    stop: async () => { stopping = true; await run; return { failed, saysWritten, hung, errors: Object.fromEntries(errors) }; },
  };
}

async function counterCheck(rc, keys, acked) {
  let over = 0; let under = 0;
  for (const m of rc.masters()) {
    const values = await m.commands(keys.map((k) => ['GET', k]));
    values.forEach((v, i) => {
      if (v instanceof Error) return; // MOVED: not this master's key
      const n = Number(v ?? 0);
      if (n > acked[i]) over++;
      if (n < acked[i]) under++;
    });
  }
  return { over, under };
}

async function scenario(rc, client, name, prefix, act) {
  const w = startWriters(client, prefix);
  await sleep(500);
  const afterAct = await act();
  await sleep(500);
  const r = await w.stop();
  const { over, under } = await counterCheck(rc, w.keys, w.acked);
  const errs = Object.entries(r.errors).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
  console.log(`  ${name}: ${r.failed} rejected (${errs}); ${r.saysWritten} of them say whether they were written; ${r.hung} pending after ${HUNG_MS / 1000} s; counters above acked: ${over}, below: ${under}${afterAct ?? ''}`);
}

console.log(versions);
const rc = await startCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000, extraArgs: ['--loglevel', 'warning'] });
try {
  let round = 0;
  for (const [name, k] of Object.entries(clients)) {
    console.log(`${name}:`);
    const seed = rc.masters()[0];
    const client = await k.open({ host: seed.host, port: seed.port, url: seed.url });
    const tag = `p${round++}`;
    await scenario(rc, client, 'live reshard of 1000 slots', `${tag}r`, async () => {
      const to = rc.masters()[round % rc.masters().length];
      await rc.reshard(1000, 'all', to);
    });
    await scenario(rc, client, 'CLUSTER FAILOVER', `${tag}f`, async () => {
      const master = rc.masters()[1];
      await rc.failover(rc.replicasOf(master)[0]);
    });
    let victim;
    await scenario(rc, client, 'SIGKILL of a master', `${tag}k`, async () => {
      victim = rc.masters()[2];
      await rc.killMaster(victim);
      // Commands sent once the replica is promoted.
      const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => Promise.race([client.incr(`${tag}after:${i}`), sleep(HUNG_MS).then(() => { throw new Error('pending'); })])));
      return `; of 300 INCRs sent after the promotion ${results.filter((x) => x.status === 'rejected').length} failed`;
    });
    await rc.restartNode(victim);
    await client.close();
  }
} finally {
  await rc.stop();
}
