// A cluster's graceful close and its command timeout, wherever a command waits (issue 22): behind
// a moved slot's fence, on a TRYAGAIN retry timer, with a MOVED that comes back after close(),
// before the slot map is known. One real cluster for the suite.
import { expect } from 'chai';
import { EventLoop, TimeoutError, keySlot, type Cluster } from '../lib/index.js';
import { startCluster, type ClusterNode, type RedisCluster } from '../harness/index.js';
import { errorOf, outcome } from './support/helpers.js';

describe('cluster: graceful close and command timeouts where commands wait', function () {
  let cluster: RedisCluster;
  let loop: EventLoop;

  before(async function () {
    this.timeout(120_000);
    cluster = await startCluster({ masters: 3, replicasPerMaster: 0 });
  });
  after(async () => { await cluster?.stop(); });
  beforeEach(async () => {
    await cluster.waitForConvergence();
    await Promise.all(cluster.masters().map((m) => m.command('FLUSHALL')));
    loop = new EventLoop();
  });
  afterEach(async () => {
    await Promise.all(cluster.masters().map((m) => m.command('CLIENT', 'UNPAUSE').catch(() => {})));
    await loop.close();
  });

  /** A key of `node` whose slot is not `notSlot`. */
  async function keyOn(node: ClusterNode, prefix: string, notSlot = -1): Promise<string> {
    for (let i = 0; ; i++) {
      const k = `${prefix}:${i}`;
      if (keySlot(k) !== notSlot && await cluster.nodeForSlot(keySlot(k)) === node) return k;
    }
  }

  /**
   * Moves `key`'s slot away behind the client's back, then makes the client meet the MOVED while
   * the old owner holds its connection: CLIENT PAUSE WRITE lets the INCR through (it is answered
   * MOVED before the pause applies) and holds the SET behind it, so the fence's PING waits.
   * Resolves once the client has followed the MOVED, i.e. the slot's fence is up.
   */
  async function fenceUp(c: Cluster, key: string, pauseMs: number): Promise<{ blocker: PromiseLike<unknown> }> {
    expect(await loop.sendCommand(c, 'SET', key, '0')).to.equal('OK'); // the client knows the owner
    const slot = keySlot(key);
    const from = await cluster.nodeForSlot(slot);
    const other = await keyOn(from, 'other', slot);
    await cluster.moveSlot(slot, cluster.masters().find((m) => m !== from)!);
    await from.command('CLIENT', 'PAUSE', pauseMs, 'WRITE');
    const first = loop.sendCommand(c, 'INCR', key);
    const blocker = loop.sendCommand(c, 'SET', other, 'x');
    expect(await first).to.equal(1);
    return { blocker };
  }

  it('close() sees through the commands waiting behind a moved slot\'s fence', async () => {
    const c = loop.cluster([cluster.seedUrl]);
    const key = '{fenced}:n';
    const { blocker } = await fenceUp(c, key, 1500);
    const fencedBefore = c.stats.fenced;
    const held = Array.from({ length: 20 }, () => loop.sendCommand(c, 'INCR', key));
    expect(c.stats.fenced - fencedBefore).to.equal(20); // they wait for the old owner to answer
    const closed = loop.close();
    const results = await Promise.all(held.map((f) => outcome(f)));
    await closed;
    expect(results).to.deep.equal(Array.from({ length: 20 }, (_, i) => ({ ok: true, value: i + 2 })));
    expect(await blocker).to.equal('OK');
    expect(await (await cluster.masterOfKey(key)).command('GET', key)).to.equal('21');
  });

  it('close() sees through a command on a TRYAGAIN retry timer', async () => {
    const c = loop.cluster([cluster.seedUrl], { maxRedirections: 64 });
    const [a, b] = ['{retry}:a', '{retry}:b'];
    await loop.sendCommand(c, 'MSET', a, '1', b, '2');
    const slot = keySlot(a);
    const from = await cluster.nodeForSlot(slot);
    const migration = await cluster.beginMigration(slot, cluster.masters().find((m) => m !== from)!);
    expect(await migration.migrateSomeKeys(1)).to.equal(1); // one key on each side: MGET answers TRYAGAIN
    const mget = loop.sendCommand(c, 'MGET', a, b);
    while (c.stats.tryAgain === 0) await new Promise((r) => setTimeout(r, 5));
    const closed = loop.close();
    await migration.finish();
    await closed;
    expect(await mget).to.deep.equal(['1', '2']);
  });

  it('close() sees through a command whose MOVED comes back after close() was called', async () => {
    const c = loop.cluster([cluster.seedUrl]);
    const key = '{late-moved}:n';
    expect(await loop.sendCommand(c, 'INCR', key)).to.equal(1);
    const slot = keySlot(key);
    const from = await cluster.nodeForSlot(slot);
    await cluster.moveSlot(slot, cluster.masters().find((m) => m !== from)!);
    const movedBefore = c.stats.moved;
    const incrs = Array.from({ length: 10 }, () => loop.sendCommand(c, 'INCR', key));
    await loop.close(); // in the same tick: every MOVED arrives after close()
    expect(await Promise.all(incrs)).to.deep.equal(Array.from({ length: 10 }, (_, i) => i + 2));
    expect(c.stats.moved).to.be.greaterThan(movedBefore);
  });

  it('commandTimeout holds while a command waits behind a fence', async () => {
    const c = loop.cluster([cluster.seedUrl], { commandTimeout: 200 });
    const key = '{fence-timeout}:n';
    const { blocker } = await fenceUp(c, key, 3000);
    const err = errorOf(await outcome(loop.sendCommand(c, 'INCR', key)));
    expect(err).to.be.instanceOf(TimeoutError);
    expect(err.message).to.match(/behind the move of slot/);
    expect(err.message).to.match(/never written/);
    await outcome(blocker); // paused past its timeout: it times out on its connection as usual
  });

  it('commandTimeout holds while a command waits for the slot map', async () => {
    const c = loop.cluster(['redis://127.0.0.1:1'], { commandTimeout: 200, connectTimeout: 30_000 });
    const err = errorOf(await outcome(loop.sendCommand(c, 'GET', 'k')));
    expect(err).to.be.instanceOf(TimeoutError);
    expect(err.message).to.match(/slot map/);
    loop.disconnect(); // nothing to wait for: the seed never answers
  });
});
