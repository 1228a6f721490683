// Atomic blocks, batches and scripts on a real Redis Cluster (one cluster for the suite).
import { expect } from 'chai';
import { EventLoop, ReplyError, RoutingError, TransactionRetryError, type Cluster } from '../lib/index.js';
import { startCluster, type RedisCluster } from '../harness/index.js';
import { errorOf, outcome } from './support/helpers.js';
import { startHammer } from './support/hammer.js';

describe('multi, batch and scripts on a cluster', function () {
  let cluster: RedisCluster;
  let loop: EventLoop;
  let c: Cluster;

  before(async function () {
    this.timeout(120_000);
    cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
  });
  after(async () => { await cluster?.stop(); });
  beforeEach(async () => {
    await Promise.all(cluster.masters().map((m) => m.command('FLUSHALL')));
    loop = new EventLoop();
    c = loop.cluster([cluster.seedUrl]);
  });
  afterEach(async () => { await loop.close(); });

  it('runs a block on the master of its slot, and refuses one that spans slots before writing', async () => {
    const r = await loop.multi(c, [['SET', '{acct:1}:a', '5'], ['INCRBY', '{acct:1}:a', '2'], ['GET', '{acct:1}:a']]);
    expect(r).to.deep.equal(['OK', 7, '7']);
    const owner = await cluster.masterOfKey('{acct:1}:a');
    expect(await owner.command('GET', '{acct:1}:a')).to.equal('7');
    const err = errorOf(await outcome(loop.multi(c, [['SET', 'a', '1'], ['SET', 'b', '1']])));
    expect(err).to.be.instanceOf(RoutingError);
    for (const m of cluster.masters()) expect(await m.command('DBSIZE')).to.equal(m === owner ? 1 : 0);
  });

  it('sends a block that met MOVED while queueing again, whole, to the new owner, and it runs once', async () => {
    const key = '{moving}:n';
    await loop.multi(c, [['INCR', key]]); // the client knows the current owner
    const slot = await cluster.keySlot(key);
    const from = await cluster.nodeForSlot(slot);
    const to = cluster.masters().find((m) => m !== from)!;
    await cluster.moveSlot(slot, to);
    const movedBefore = c.stats.moved;
    const r = await loop.multi(c, [['INCR', key], ['INCR', key], ['GET', key]]);
    expect(r).to.deep.equal([2, 3, '3']); // ran once, after the redirection
    expect(c.stats.moved).to.be.greaterThan(movedBefore);
    expect(await to.command('GET', key)).to.equal('3');
    expect(await from.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(0);
  });

  it('routes a script by its keys, FCALL too (through the key specs)', async () => {
    const script = loop.script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    const keys = Array.from({ length: 30 }, (_, i) => `s:${i}`);
    expect(await Promise.all(keys.map((k, i) => script.run(c, [k], [i + 1])))).to.deep.equal(keys.map((_, i) => i + 1));
    const lib = "#!lua name=txlib\nredis.register_function('tx_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)";
    expect(await loop.sendCommand(c, 'FUNCTION', 'LOAD', 'REPLACE', lib)).to.equal('txlib'); // one call: every master
    const fkeys = Array.from({ length: 30 }, (_, i) => `f:${i}`);
    expect(await Promise.all(fkeys.map((k) => loop.sendCommand(c, 'FCALL', 'tx_set', 1, k, `v-${k}`)))).to.deep.equal(fkeys.map(() => 'OK'));
    for (const k of [...keys.slice(0, 6), ...fkeys.slice(0, 6)]) {
      const owner = await cluster.masterOfKey(k);
      expect(await owner.command('EXISTS', k), k).to.equal(1);
    }
    expect(c.stats.moved).to.equal(0); // every call went to the right node first time
  });

  it('FUNCTION LOAD / DELETE / FLUSH / RESTORE and SCRIPT LOAD / FLUSH go to every master, replies merged', async () => {
    const lib = "#!lua name=everywhere\nredis.register_function('ew_incr', function(keys) return redis.call('INCR', keys[1]) end)";
    const keys = Array.from({ length: 30 }, (_, i) => `ew:${i}`); // on every master
    const fcallAll = () => Promise.all(keys.map((k) => outcome(loop.sendCommand(c, 'FCALL', 'ew_incr', 1, k))));
    expect(await loop.sendCommand(c, 'FUNCTION', 'FLUSH')).to.equal('OK'); // what earlier tests loaded, everywhere
    expect(await loop.sendCommand(c, 'FUNCTION', 'LOAD', lib)).to.equal('everywhere');
    expect((await fcallAll()).every((o) => o.ok)).to.equal(true);
    // Loaded already on every master: all of them refuse, and the error names a node.
    const again = errorOf(await outcome(loop.sendCommand(c, 'FUNCTION', 'LOAD', lib)));
    expect(again).to.be.instanceOf(ReplyError);
    expect(again.message).to.match(/already exists/);
    expect(again.message).to.match(/127\.0\.0\.1:\d+/);
    const payload = await loop.send<Buffer>(c.masterConnections[0]!, ['FUNCTION', 'DUMP'], { returnBuffers: true });
    expect(await loop.sendCommand(c, 'FUNCTION', 'DELETE', 'everywhere')).to.equal('OK');
    expect((await fcallAll()).every((o) => !o.ok)).to.equal(true);
    expect(await loop.send(c, ['FUNCTION', 'RESTORE', payload])).to.equal('OK');
    expect((await fcallAll()).every((o) => o.ok)).to.equal(true);
    expect(await loop.sendCommand(c, 'FUNCTION', 'FLUSH')).to.equal('OK');
    for (const m of cluster.masters()) expect(await m.command('FUNCTION', 'LIST')).to.deep.equal([]);

    const sha = await loop.sendCommand(c, 'SCRIPT', 'LOAD', "return redis.call('INCR', KEYS[1])") as string;
    expect(sha).to.match(/^[0-9a-f]{40}$/);
    expect((await Promise.all(keys.map((k) => outcome(loop.sendCommand(c, 'EVALSHA', sha, 1, k))))).every((o) => o.ok)).to.equal(true);
    for (const m of cluster.masters()) expect(await m.command('SCRIPT', 'EXISTS', sha)).to.deep.equal([1]);
    expect(await loop.sendCommand(c, 'SCRIPT', 'FLUSH')).to.equal('OK');
    for (const m of cluster.masters()) expect(await m.command('SCRIPT', 'EXISTS', sha)).to.deep.equal([0]);
  });

  it('runs a script again after a failover promoted a replica that never saw it', async () => {
    const script = loop.script("return redis.call('INCR', KEYS[1])");
    const key = '{script}:n';
    expect(await script.run(c, [key])).to.equal(1);
    const owner = await cluster.masterOfKey(key);
    await cluster.failover(cluster.replicasOf(owner)[0]!);
    const promoted = await cluster.masterOfKey(key);
    expect(promoted).to.not.equal(owner);
    await promoted.command('SCRIPT', 'FLUSH'); // whatever replication carried, the new master has no scripts
    const before = script.noscripts;
    const results: number[] = await Promise.all(Array.from({ length: 50 }, () => script.run(c, [key])));
    expect([...results].sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 2)); // each ran once
    expect(script.noscripts).to.be.greaterThan(before);
    expect(await promoted.command('GET', key)).to.equal('51');
  });

  it('10 callers x 20 increments of {bal:1}.v end exactly at 200, none rejected, none aborted', async () => {
    const key = '{bal:1}.v';
    let runs = 0;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        await loop.transaction(c, key, async (tx) => {
          runs++;
          await tx.send(['WATCH', key]);
          const n = Number(await tx.send(['GET', key]));
          return tx.exec([['SET', key, n + 1]]);
        });
      }
    };
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => outcome(worker())));
    console.log(`      cluster, 10 x 20: ${runs} callback runs for 200 increments (${(runs / 200).toFixed(3)} per increment)`);
    expect(outcomes.filter((o) => !o.ok)).to.deep.equal([]);
    expect(await (await cluster.masterOfKey(key)).command('GET', key)).to.equal('200');
    expect(runs).to.equal(200);
  });

  it('with a second process writing {bal:1}.v on its master, callers finish or fail with TransactionRetryError, nothing lost', async () => {
    const key = '{bal:1}.v';
    const owner = await cluster.masterOfKey(key);
    const hammer = await startHammer(owner.port, key, 1);
    let runs = 0;
    let committed = 0;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        await loop.transaction(c, key, async (tx) => {
          runs++;
          await tx.send(['WATCH', key]);
          const n = Number(await tx.send(['GET', key]));
          const r = await tx.exec([['SET', key, n + 1]]);
          if (r !== null) committed++;
          return r;
        });
      }
    };
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => outcome(worker())));
    const outside = await hammer.stop();
    const failed = outcomes.filter((o) => !o.ok).map((o) => (o as { error: Error }).error);
    console.log(`      cluster, 10 x 20 against an outside writer (${outside} INCRs): ${committed} committed in ${runs} callback runs ` +
      `(${(runs / Math.max(1, committed)).toFixed(3)} per increment), ${failed.length} caller(s) gave up`);
    for (const err of failed) expect(err).to.be.instanceOf(TransactionRetryError);
    expect(Number(await owner.command('GET', key))).to.equal(committed + outside);
    expect(committed).to.be.at.least((10 - failed.length) * 20);
  });

  it('lends connections to the node of the key: transactions and a BLPOP on a cluster', async () => {
    const key = '{acct:9}:balance';
    await Promise.all(Array.from({ length: 5 }, async () => {
      for (let i = 0; i < 10; i++) {
        await loop.transaction(c, key, async (tx) => {
          await tx.send(['WATCH', key]);
          const n = Number(await tx.send(['GET', key]));
          return tx.exec([['SET', key, n + 1]]);
        }, { maxAttempts: 100 });
      }
    }));
    const owner = await cluster.masterOfKey(key);
    expect(await owner.command('GET', key)).to.equal('50');
    const popped = loop.withConnection(c, '{acct:9}:jobs', (conn) => {
      expect(conn.address).to.equal(`${owner.host}:${owner.port}/0`);
      return loop.send(conn, ['BLPOP', '{acct:9}:jobs', 0], { timeout: 0 });
    });
    expect(await loop.sendCommand(c, 'RPUSH', '{acct:9}:jobs', 'j1')).to.equal(1);
    expect(await popped).to.deep.equal(['{acct:9}:jobs', 'j1']);
  });

  it('batch: commands spread over every master in one go, a failing command in the middle is its own outcome', async () => {
    await c.whenReady();
    const commands: Array<[string, ...string[]]> = [];
    for (let i = 0; i < 500; i++) commands.push(['SET', `key:${i}`, String(i)]);
    commands.push(['HSET', 'key:3', 'f', 'v']); // WRONGTYPE, in the middle
    for (let i = 0; i < 500; i++) commands.push(['INCR', `key:${i}`]);
    const writesBefore = c.masterConnections.map((conn) => conn.stats.writes);
    const outcomes = await loop.batch(c, commands);
    expect(outcomes).to.have.length(1001);
    expect(outcomes[500]!.ok).to.equal(false);
    const err = (outcomes[500] as unknown as { error: ReplyError }).error;
    expect(err).to.be.instanceOf(ReplyError);
    expect(err.code).to.equal('WRONGTYPE');
    for (let i = 0; i < 500; i++) {
      expect(outcomes[i]).to.deep.equal({ ok: true, value: 'OK' });
      expect(outcomes[501 + i]).to.deep.equal({ ok: true, value: i + 1 });
    }
    // Every master got its share (about 333 commands) in the same tick: one slice of 256 and the rest.
    const writes = c.masterConnections.map((conn, i) => conn.stats.writes - writesBefore[i]!);
    for (const w of writes) expect(w).to.be.within(1, 2);
    for (const m of cluster.masters()) expect(await m.command('DBSIZE')).to.be.greaterThan(100);
  });
});
