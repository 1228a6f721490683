// The client-side cache on a real Redis Cluster (harness/cluster.ts, started once) and on a shard
// set: hits per node, MGET across slots with only the misses sent, own writes, another client's
// writes, a slot migration and a failover with no stale read after the topology change.
import { expect } from 'chai';
import { EventLoop, Future, type Cluster, type ShardSet } from '../lib/index.js';
import { startCluster, startShards, type ClusterNode, type RedisCluster, type RedisServer } from '../harness/index.js';

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function calls(node: { command(...a: string[]): Promise<unknown> }, command: string): Promise<number> {
  const info = String(await node.command('INFO', 'commandstats'));
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return m === null ? 0 : Number(m[1]);
}

const CACHED = { cache: true } as const;

describe('client-side cache on a cluster', function () {
  this.timeout(120_000);
  let rc: RedisCluster;
  let loop: EventLoop;
  let cluster: Cluster;

  before(async () => {
    rc = await startCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
  });
  after(async () => {
    await rc?.stop();
  });
  beforeEach(async () => {
    loop = new EventLoop();
    cluster = loop.cluster([{ port: rc.masters()[0]!.port }], { cache: {} });
    await cluster.whenReady();
  });
  afterEach(async () => {
    await loop.close();
  });

  async function masterOf(key: string): Promise<ClusterNode> {
    return rc.masterOfKey(key);
  }

  it('hits per node; MGET across slots sends only the misses; own writes are read back', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `c:${i}`);
    await Future.all(keys.map((k, i) => loop.sendCommand(cluster, 'SET', k, `v${i}`)));
    expect(await Future.all(keys.map((k) => loop.send(cluster, ['GET', k], CACHED)))).to.deep.equal(keys.map((_, i) => `v${i}`));
    const gets = (await Promise.all(rc.masters().map((m) => calls(m, 'get')))).reduce((a, b) => a + b, 0);
    expect(await Future.all(keys.map((k) => loop.send(cluster, ['GET', k], CACHED)))).to.deep.equal(keys.map((_, i) => `v${i}`));
    expect((await Promise.all(rc.masters().map((m) => calls(m, 'get')))).reduce((a, b) => a + b, 0)).to.equal(gets);
    expect(cluster.cache!.stats).to.include({ hits: 300, misses: 300, entries: 300 });

    const mkeys = Array.from({ length: 40 }, (_, i) => `m:${i}`);
    await Future.all(mkeys.map((k) => loop.sendCommand(cluster, 'SET', k, k.toUpperCase())));
    const first = mkeys.filter((_, i) => i % 2 === 0);
    expect(await loop.send(cluster, ['MGET', ...first], CACHED)).to.deep.equal(first.map((k) => k.toUpperCase()));
    const s0 = cluster.cache!.stats;
    expect(await loop.send(cluster, ['MGET', ...mkeys], CACHED)).to.deep.equal(mkeys.map((k) => k.toUpperCase()));
    const s1 = cluster.cache!.stats;
    expect(s1.hits - s0.hits).to.equal(20);
    expect(s1.misses - s0.misses).to.equal(20);
    const mgets = (await Promise.all(rc.masters().map((m) => calls(m, 'mget')))).reduce((a, b) => a + b, 0);
    expect(await loop.send(cluster, ['MGET', ...mkeys], CACHED)).to.deep.equal(mkeys.map((k) => k.toUpperCase()));
    expect((await Promise.all(rc.masters().map((m) => calls(m, 'mget')))).reduce((a, b) => a + b, 0)).to.equal(mgets);

    // Own writes, not awaited: the read after each sees it.
    const reads = keys.map((k) => {
      loop.sendCommand(cluster, 'INCRBY', k.replace('c:', 'n:'), 1);
      loop.sendCommand(cluster, 'SET', k, 'w');
      return loop.send(cluster, ['GET', k], CACHED);
    });
    expect((await Future.all(reads)).every((v) => v === 'w')).to.equal(true);
    // Another client's write: invalidated by the node that holds the key.
    const node = await masterOf('c:7');
    await node.command('SET', 'c:7', 'theirs');
    await until(async () => (await loop.send(cluster, ['GET', 'c:7'], CACHED)) === 'theirs', 2000, 'the invalidation from the node');
  });

  it('a slot migration: no stale read once the client routes the slot to its new owner', async () => {
    const key = 'mig:{x}';
    const slot = await rc.keySlot(key);
    await loop.sendCommand(cluster, 'SET', key, 'before');
    expect(await loop.send(cluster, ['GET', key], CACHED)).to.equal('before');
    expect(await loop.send(cluster, ['GET', key], CACHED)).to.equal('before');
    const source = await rc.nodeForSlot(slot);
    const target = rc.masters().find((m) => m !== source)!;
    await rc.moveSlot(slot, target);
    // Uncached reads drive the client to the new map; what is cached is what was read before the move.
    await until(async () => {
      await loop.sendCommand(cluster, 'GET', key);
      return cluster.connectionFor(key).resolvedOptions.port === target.port;
    }, 10_000, 'the client to route the slot to its new owner');
    await target.command('SET', key, 'after');
    for (let i = 0; i < 20; i++) expect(await loop.send(cluster, ['GET', key], CACHED)).to.equal('after');
    // And back: what the old owner cached before the first move is not served again.
    await rc.moveSlot(slot, source);
    await until(async () => {
      await loop.sendCommand(cluster, 'GET', key);
      return cluster.connectionFor(key).resolvedOptions.port === source.port;
    }, 10_000, 'the client to route the slot back');
    for (let i = 0; i < 20; i++) expect(await loop.send(cluster, ['GET', key], CACHED)).to.equal('after');
  });

  it('a failover: no stale read once the client routes to the promoted replica', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `fo:{y}:${i}`);
    await Future.all(keys.map((k) => loop.sendCommand(cluster, 'SET', k, 'before')));
    await Future.all(keys.map((k) => loop.send(cluster, ['GET', k], CACHED)));
    expect((await Future.all(keys.map((k) => loop.send(cluster, ['GET', k], CACHED)))).every((v) => v === 'before')).to.equal(true);
    const master = await masterOf(keys[0]!);
    const replica = rc.replicasOf(master)[0]!;
    await rc.failover(replica);
    await until(async () => {
      await loop.sendCommand(cluster, 'GET', keys[0]!);
      return cluster.connectionFor(keys[0]!).resolvedOptions.port === replica.port;
    }, 15_000, 'the client to route to the promoted replica');
    await replica.commands(keys.map((k) => ['SET', k, 'after']));
    const got = await Future.all(keys.map((k) => loop.send(cluster, ['GET', k], CACHED)));
    expect(got.filter((v) => v !== 'after')).to.deep.equal([]);
    await rc.failover(master); // back as it was
  });
});

describe('client-side cache on a shard set', function () {
  this.timeout(60_000);
  let servers: RedisServer[];
  let loop: EventLoop;
  let set: ShardSet;

  before(async () => {
    servers = await startShards(3);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  beforeEach(() => {
    loop = new EventLoop();
    set = loop.shards(servers.map((s) => ({ port: s.port })), { cache: {} });
  });
  afterEach(async () => {
    await loop.close();
  });

  it('MGET over the shards: each key its own entry, one MGET per shard for the misses; writes dropped', async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `s:${i}`);
    await Future.all(keys.map((k) => loop.sendCommand(set, 'SET', k, k)));
    const half = keys.slice(0, 30);
    expect(await loop.send(set, ['MGET', ...half], CACHED)).to.deep.equal(half);
    const before = (await Promise.all(servers.map((s) => calls(s, 'mget'))));
    expect(await loop.send(set, ['MGET', ...keys], CACHED)).to.deep.equal(keys);
    const after = (await Promise.all(servers.map((s) => calls(s, 'mget'))));
    expect(after.map((n, i) => n - before[i]!)).to.deep.equal([1, 1, 1]);
    expect(set.cache!.stats).to.include({ entries: 60 });
    loop.sendCommand(set, 'DEL', 's:3', 's:40');
    expect(await loop.send(set, ['MGET', 's:3', 's:4', 's:40'], CACHED)).to.deep.equal([null, 's:4', null]);
    await servers[set.shardOf('s:4')]!.command('SET', 's:4', 'x');
    await until(async () => (await loop.send(set, ['GET', 's:4'], CACHED)) === 'x', 2000, 'the shard\'s invalidation');
  });
});
