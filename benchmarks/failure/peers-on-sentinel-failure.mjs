// What callers of redloop's loop.sentinel(), ioredis 6 ({ sentinels, name }, with and without
// its failoverDetector) and node-redis 6 (createSentinel) see on one Sentinel deployment
// (1 master, 2 replicas, 3 sentinels, quorum 2, down-after 1 s: harness/sentinel.ts) while
// the master fails over by hand (SENTINEL FAILOVER) and while it is killed (SIGKILL), with
// writers running INCR on 3000 counters in windows of 500. Counted: commands rejected to the
// caller (by the first words of the error), whether each rejection says if the command was
// written, commands still pending after 15 s, the longest any INCR waited, INCRs sent after
// the promotion that failed, and counters on the new master below their acknowledged INCRs
// (acknowledged writes lost: the old master kept taking writes after the promotion) or above
// them (a written command sent again).
// Not part of the test suite: run `npx tsc -p . && node benchmarks/failure/peers-on-sentinel-failure.mjs`.
import { createRequire } from 'node:module';
import { EventLoop } from '../../dist/lib/index.js';
import { startSentinels } from '../../dist/harness/sentinel.js';

const require = createRequire(import.meta.url);
const IoRedis = require('ioredis');
const { createSentinel } = require('redis');
const versions = `ioredis ${require('ioredis/package.json').version}, node-redis ${require('redis/package.json').version}, redis-server 7.0`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const COUNTERS = 3000;
const WINDOW = 500;
const HUNG_MS = 15_000;
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const killOnly = process.argv.includes('--kill-only');

const clients = {
  'redloop loop.sentinel()': {
    open: async (dep) => {
      const loop = new EventLoop();
      loop.on('error', () => {});
      const db = loop.sentinel({ sentinels: dep.sentinelUrls, name: dep.name });
      await db.whenReady();
      return { incr: (k) => loop.sendCommand(db, 'INCR', k), close: () => loop.close() };
    },
  },
  'ioredis { sentinels } (autopipelining)': {
    open: async (dep) => ioredis(dep, false),
  },
  'ioredis { sentinels, failoverDetector: true }': {
    open: async (dep) => ioredis(dep, true),
  },
  'node-redis createSentinel': {
    open: async (dep) => {
      const c = createSentinel({ name: dep.name, sentinelRootNodes: dep.sentinelAddresses });
      c.on('error', () => {});
      await c.connect();
      return { incr: (k) => c.incr(k), close: () => c.close() };
    },
  },
};

async function ioredis(dep, failoverDetector) {
  const c = new IoRedis({ sentinels: dep.sentinelAddresses, name: dep.name, enableAutoPipelining: true, lazyConnect: true, failoverDetector });
  c.on('error', () => {});
  await c.connect();
  return { incr: (k) => c.incr(k), close: () => c.quit() };
}

function startWriters(client, prefix) {
  const acked = new Int32Array(COUNTERS);
  const errors = new Map();
  let failed = 0; let saysWritten = 0; let hung = 0; let stopping = false; let next = 0; let longest = 0;
  const keys = Array.from({ length: COUNTERS }, (_, i) => `${prefix}:${i}`);
  const one = (i) => {
    let timer;
    const sent = Date.now();
    const p = Promise.resolve(client.incr(keys[i])).then(() => { acked[i]++; }, (e) => {
      failed++;
      if (typeof e?.written === 'boolean') saysWritten++;
      const word = `${e?.name ?? 'Error'} "${String(e?.message ?? e).replace(/\d+(\.\d+)*(:\d+)?/g, 'N').slice(0, 50)}"`;
      errors.set(word, (errors.get(word) ?? 0) + 1);
    }).finally(() => { longest = Math.max(longest, Date.now() - sent); });
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
    stop: async () => { stopping = true; await run; return { failed, saysWritten, hung, longest, errors: Object.fromEntries(errors) }; },
  };
}

async function counterCheck(dep, keys, acked) {
  let over = 0; let under = 0; let lost = 0;
  const values = await dep.master.commands(keys.map((k) => ['GET', k]));
  values.forEach((v, i) => {
    const n = Number(v ?? 0);
    if (n > acked[i]) over++;
    if (n < acked[i]) { under++; lost += acked[i] - n; }
  });
  return { over, under, lost };
}

async function afterPromotion(client, tag) {
  const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => Promise.race([client.incr(`${tag}after:${i}`), sleep(HUNG_MS).then(() => { throw new Error('pending'); })])));
  return results.filter((x) => x.status === 'rejected').length;
}

async function scenario(dep, client, name, prefix, act) {
  const log = dep.watch();
  const w = startWriters(client, prefix);
  await sleep(1000);
  const t0 = Date.now();
  const afterAct = await act();
  const promotedIn = Date.now() - t0;
  await sleep(1500);
  const r = await w.stop();
  const { over, under, lost } = await counterCheck(dep, w.keys, w.acked);
  log.stop();
  // More than one promotion (a failover that exceeded failover-timeout, then another) drops what the first promoted master acknowledged.
  const promotions = new Set(log.events.filter((e) => e.channel === '+promoted-slave').map((e) => e.message.split(' ')[1])).size;
  const aborted = log.events.filter((e) => e.channel.startsWith('-failover-abort') || e.channel === '+failover-end-for-timeout').length;
  const errs = Object.entries(r.errors).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
  console.log(`  ${name}: ${r.failed} rejected (${errs}); ${r.saysWritten} of them say whether they were written; ${r.hung} pending after ${HUNG_MS / 1000} s; longest INCR ${r.longest} ms (promotion seen by the harness after ${promotedIn} ms); of 300 INCRs sent after the promotion ${afterAct} failed; counters above acked: ${over}, below: ${under} (${lost} acknowledged INCRs lost); replicas promoted: ${promotions}, failovers aborted or timed out: ${aborted}`);
  return { name, ...r, promotedIn, afterPromotionFailed: afterAct, over, under, lost, promotions, aborted };
}

console.log(versions);
const dep = await startSentinels();
const rows = [];
try {
  let round = 0;
  for (const [name, k] of Object.entries(clients)) {
    if (only.length !== 0 && !only.some((o) => name.includes(o))) continue;
    console.log(`${name}:`);
    const client = await k.open(dep);
    const tag = `p${round++}`;
    if (!killOnly) {
      rows.push({ client: name, ...(await scenario(dep, client, 'SENTINEL FAILOVER', `${tag}f`, async () => {
        await dep.failover();
        return afterPromotion(client, `${tag}f`);
      })) });
      await dep.waitForConvergence(); // the old master is a replica again before the next scenario
    }
    const victim = dep.master;
    rows.push({ client: name, ...(await scenario(dep, client, 'SIGKILL of the master', `${tag}k`, async () => {
      await dep.killMaster();
      return afterPromotion(client, `${tag}k`);
    })) });
    await dep.restart(victim);
    await Promise.race([client.close(), sleep(5000)]);
  }
} finally {
  await dep.stop();
}
console.log(JSON.stringify(rows));
