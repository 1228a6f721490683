// SCAN iterators: every key of a server or of every master of a real cluster (masters scanned
// in parallel or in turn), MATCH and TYPE filters, HSCAN/SSCAN/ZSCAN, a pass that continues on
// the promoted node after a failover, and early ends (break, a failing master) that leave no
// SCAN in flight.
import { expect } from 'chai';
import { ConfigError, EventLoop, type Cluster, type Connection, type ShardSet } from '../lib/index.js';
import { startShards, type RedisCluster, type RedisServer } from '../harness/index.js';
import { within } from './support/helpers.js';
import { clusterAndLoopPerTest, serverAndLoopPerTest } from './support/fixtures.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('SCAN iterators on a server', function () {
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  serverAndLoopPerTest((f) => ({ server, loop, conn } = f));

  it('returns every key, with MATCH and TYPE filters, item by item and in batches', async () => {
    const n = 20_000;
    const report = await loop.massInsert(conn, (function* () {
      for (let i = 0; i < n; i++) yield ['SET', `s:${i}`, 'v'];
      for (let i = 0; i < 500; i++) yield ['HSET', `h:${i}`, 'f', 'v'];
      for (let i = 0; i < 300; i++) yield ['SADD', `set:${i}`, 'm'];
    })());
    expect(report.errors.count).to.equal(0);

    const all = await collect(loop.scan(conn, { count: 500 }));
    expect(new Set(all).size).to.equal(n + 800);

    const matched = new Set(await collect(loop.scan(conn, { match: 'h:*' })));
    expect(matched.size).to.equal(500);
    for (let i = 0; i < 500; i++) expect(matched.has(`h:${i}`)).to.equal(true);

    const sets = new Set(await collect(loop.scan(conn, { type: 'set', count: 100 })));
    expect(sets.size).to.equal(300);
    expect([...sets].every((k) => String(k).startsWith('set:'))).to.equal(true);

    let batches = 0;
    const fromBatches = new Set<string | Buffer>();
    for await (const batch of loop.scan(conn, { match: 's:*', count: 1000 }).batches()) {
      batches++;
      for (const k of batch) fromBatches.add(k);
    }
    expect(fromBatches.size).to.equal(n);
    expect(batches).to.be.greaterThan(1);
  });

  it('yields Buffers on request (binary keys)', async () => {
    const keys = [Buffer.from([0xff, 0x00, 0x01]), Buffer.from([0xc3, 0x28]), Buffer.from('plain')];
    for (const k of keys) await loop.sendCommand(conn, 'SET', k, 'v');
    const seen = await collect(loop.scan(conn, { returnBuffers: true }));
    expect(seen.every((k) => Buffer.isBuffer(k))).to.equal(true);
    expect(seen.map((k) => (k as Buffer).toString('hex')).sort()).to.deep.equal(keys.map((k) => k.toString('hex')).sort());
  });

  it('HSCAN returns every field of a 100k-field hash with its value; SSCAN and ZSCAN likewise', async () => {
    const fields = 100_000;
    const report = await loop.massInsert(conn, (function* () {
      for (let i = 0; i < fields; i += 1000) {
        const cmd: string[] = ['HSET', 'big'];
        for (let j = i; j < i + 1000; j++) cmd.push(`f${j}`, `v${j}`);
        yield cmd;
      }
      const sadd: string[] = ['SADD', 'set'];
      for (let j = 0; j < 5000; j++) sadd.push(`m${j}`);
      yield sadd;
      yield ['ZADD', 'z', '1.5', 'a', '-2', 'b', 'inf', 'c', '-inf', 'd'];
    })());
    expect(report.errors.count).to.equal(0);

    const seen = new Map<string, string>();
    for await (const [f, v] of loop.hscan(conn, 'big')) seen.set(String(f), String(v));
    expect(seen.size).to.equal(fields);
    for (let j = 0; j < fields; j += 997) expect(seen.get(`f${j}`)).to.equal(`v${j}`);

    const matched = await collect(loop.hscan(conn, 'big', { match: 'f9999*' }));
    expect(matched.map(([f]) => f).sort()).to.deep.equal(['f9999', 'f99990', 'f99991', 'f99992', 'f99993', 'f99994', 'f99995', 'f99996', 'f99997', 'f99998', 'f99999']);

    expect(new Set(await collect(loop.sscan(conn, 'set', { count: 100 }))).size).to.equal(5000);
    const z = new Map(await collect(loop.zscan(conn, 'z')));
    expect(Object.fromEntries(z)).to.deep.equal({ a: 1.5, b: -2, c: Infinity, d: -Infinity });
    expect(await collect(loop.hscan(conn, 'missing'))).to.deep.equal([]);
  });

  it('rejects bad input with clear errors, and passes server errors on', async () => {
    expect(() => loop.scan(conn, { count: 0 })).to.throw(ConfigError, /count must be a positive integer/);
    expect(() => loop.scan(conn, { matc: 'x' } as never)).to.throw(ConfigError, /unknown option "matc"/);
    expect(() => loop.scan(conn, { match: 5 } as never)).to.throw(ConfigError, /match must be/);
    expect(() => loop.hscan(conn, 'h', { type: 'hash' } as never)).to.throw(ConfigError, /unknown option "type"/);
    expect(() => loop.hscan(conn, 5 as never)).to.throw(TypeError, /key must be a string or a Buffer/);
    expect(() => loop.scan({} as never)).to.throw(TypeError, /target must be/);
    await loop.sendCommand(conn, 'SET', 'str', 'v');
    let err: Error | undefined;
    try { await collect(loop.hscan(conn, 'str')); } catch (e) { err = e as Error; }
    expect(err?.name).to.equal('ReplyError');
    expect(err?.message).to.match(/WRONGTYPE/);
  });

  it('keeps its cursor across a reconnect of the connection and still sees every key', async () => {
    const n = 5000;
    await loop.massInsert(conn, (function* () { for (let i = 0; i < n; i++) yield ['SET', `k:${i}`, 'v']; })());
    const seen = new Set<string | Buffer>();
    let killed = false;
    for await (const k of loop.scan(conn, { count: 50 })) {
      seen.add(k);
      if (!killed && seen.size === 1000) {
        killed = true;
        await server.command('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      }
    }
    expect(killed).to.equal(true);
    expect(conn.stats.reconnects).to.be.greaterThan(0);
    expect(seen.size).to.equal(n);
  });
});

describe('SCAN iterators on a shard set', function () {
  this.timeout(60_000);
  const KEYS = 30_000;
  let servers: RedisServer[];
  let loop: EventLoop;
  let set: ShardSet;

  before(async () => {
    servers = await startShards(3);
    loop = new EventLoop();
    set = loop.shards(servers.map((s) => s.url));
    for (let i = 0; i < KEYS; i += 1000) {
      const batch = [];
      for (let j = i; j < i + 1000; j++) batch.push(loop.sendCommand(set, 'SET', `sk:${j}`, 'v'));
      await Promise.all(batch);
    }
  });
  after(async () => {
    await loop.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('sees every key of every shard, all shards at once and one after the other; a break leaves no SCAN in flight', async () => {
    const sizes = await Promise.all(servers.map((s) => s.command('DBSIZE')));
    expect(sizes.every((n) => Number(n) > KEYS / 10), `keys on each shard: ${sizes.join(', ')}`).to.equal(true);
    for (const parallel of [undefined, 1]) {
      const seen = new Set<string>();
      for await (const batch of loop.scan(set, { match: 'sk:*', count: 500, parallel }).batches()) for (const k of batch) seen.add(k as string);
      expect(seen.size, `parallel ${String(parallel)}`).to.equal(KEYS);
    }
    let taken = 0;
    for await (const batch of loop.scan(set, { count: 100 }).batches()) { taken += batch.length; if (taken > 300) break; }
    expect(set.connections.map((c) => c.pendingReplies)).to.deep.equal([0, 0, 0]);
  });
});

describe('SCAN iterators on a cluster', function () {
  this.timeout(180_000);
  let cluster: RedisCluster;
  let loop: EventLoop;
  let c: Cluster;
  clusterAndLoopPerTest((f) => ({ cluster, loop, c } = f), { flush: true });

  it('sees every one of 1M keys spread over 3 masters', async () => {
    const n = 1_000_000;
    const report = await loop.massInsert(c, (function* () { for (let i = 0; i < n; i++) yield ['SET', `key:${i}`, '1']; })());
    expect(report.errors.count).to.equal(0);
    // Every master at once (the default), one at a time, two at a time.
    for (const parallel of [undefined, 1, 2]) {
      const seen = new Set<string | Buffer>();
      for await (const batch of loop.scan(c, { count: 1000, parallel }).batches()) for (const k of batch) seen.add(k);
      expect(seen.size, `parallel: ${String(parallel)}`).to.equal(n);
      for (let i = 0; i < n; i += 9973) expect(seen.has(`key:${i}`)).to.equal(true);
    }
    // Sharded keyspace with a filter: every master is asked.
    const matched = await collect(loop.scan(c, { match: 'key:99999*' }));
    expect(new Set(matched).size).to.equal(11);
  });

  it('loop.close() mid-iteration ends the iteration at once (SCAN and HSCAN), not after the 30 s retry window', async () => {
    await loop.massInsert(c, (function* () { for (let i = 0; i < 3000; i++) yield ['SET', `ck:${i}`, '1']; })());
    await loop.sendCommand(c, 'HSET', 'ch', ...Array.from({ length: 3000 }, (_, i) => [`f${i}`, 'v']).flat());
    const finish = async (it: AsyncIterator<unknown>): Promise<string> => {
      try { while (!(await it.next()).done) { /* keep reading */ } return 'done'; } catch (e) { return (e as Error).name; }
    };
    const scanIt = loop.scan(c, { count: 10 })[Symbol.asyncIterator]();
    const hscanIt = loop.hscan(c, 'ch', { count: 10 })[Symbol.asyncIterator]();
    await scanIt.next();
    await hscanIt.next();
    await loop.close();
    const outcomes = await within(Promise.all([finish(scanIt), finish(hscanIt)]), 5_000, 'the iterations to end after loop.close()');
    for (const o of outcomes) expect(o).to.be.oneOf(['done', 'ClientStateError', 'RoutingError', 'ConnectionClosedError']);
  });

  it('interleaves the masters\' batches by default, and takes them one after the other with parallel: 1', async () => {
    const n = 20_000;
    await loop.massInsert(c, (function* () { for (let i = 0; i < n; i++) yield ['SET', `ik:${i}`, '1']; })());
    /** The master of each batch, in the order the batches came; each batch is from one master. */
    const order = async (parallel?: number): Promise<Connection[]> => {
      const nodes: Connection[] = [];
      let keys = 0;
      for await (const batch of loop.scan(c, { count: 10, parallel }).batches()) {
        const node = c.connectionFor(batch[0]!);
        expect(batch.every((k) => c.connectionFor(k) === node), 'a batch holds keys of one master').to.equal(true);
        nodes.push(node);
        keys += batch.length;
      }
      expect(keys).to.be.at.least(n);
      return nodes;
    };
    // Runs of consecutive batches from the same master.
    const runs = (nodes: Connection[]) => nodes.filter((node, i) => i === 0 || nodes[i - 1] !== node).length;
    const inTurn = await order(1);
    expect(new Set(inTurn).size).to.equal(3);
    expect(runs(inTurn)).to.equal(3);
    // About 700 batches per master: each master's replies arrive while the others' are handed on.
    const together = await order();
    expect(new Set(together).size).to.equal(3);
    expect(runs(together)).to.be.greaterThan(3);
  });

  it('break and return() stop every pass and leave no SCAN in flight', async () => {
    await loop.massInsert(c, (function* () { for (let i = 0; i < 30_000; i++) yield ['SET', `bk:${i}`, '1']; })());
    // No periodic topology refresh, so the only commands on the masters are the SCANs.
    const quiet = loop.cluster([cluster.seedUrl], { refreshInterval: 0 });
    await quiet.whenReady();
    const inFlight = () => quiet.masterConnections.map((m) => m.pendingReplies);
    const sent = () => quiet.masterConnections.reduce((a, m) => a + m.stats.commandsSent, 0);

    let seen = 0;
    for await (const _ of loop.scan(quiet, { count: 10 })) if (++seen === 100) break;
    expect(seen).to.equal(100);
    expect(inFlight()).to.deep.equal([0, 0, 0]);

    let batches = 0;
    for await (const _ of loop.scan(quiet, { count: 10, parallel: 2 }).batches()) if (++batches === 5) break;
    expect(inFlight()).to.deep.equal([0, 0, 0]);

    const it = loop.scan(quiet, { count: 10 });
    await it.next();
    expect(sent()).to.be.greaterThan(0);
    await it.return();
    expect(inFlight()).to.deep.equal([0, 0, 0]);
    // Nothing is sent once the iteration has ended.
    const before = sent();
    await Promise.all(quiet.masterConnections.map((m) => loop.sendCommand(m, 'PING')));
    expect(sent()).to.equal(before + 3);
    expect((await it.next()).done).to.equal(true);
  });

  it('a master whose SCAN fails ends the iteration with its error; the other passes stop, none left in flight', async () => {
    await loop.massInsert(c, (function* () { for (let i = 0; i < 30_000; i++) yield ['SET', `ek:${i}`, '1']; })());
    const quiet = loop.cluster([cluster.seedUrl], { refreshInterval: 0 });
    await quiet.whenReady();
    const refusing = cluster.masters()[1]!;
    let err: Error | undefined;
    let seen = 0;
    try {
      for await (const _ of loop.scan(quiet, { count: 10 })) {
        // Mid-pass: from now on this master refuses SCAN (NOPERM, not retryable).
        if (++seen === 300) await refusing.command('ACL', 'SETUSER', 'default', '-scan');
      }
    } catch (e) {
      err = e as Error;
    } finally {
      await refusing.command('ACL', 'SETUSER', 'default', '+@all');
    }
    expect(err?.name).to.equal('ReplyError');
    expect(err?.message).to.match(/NOPERM/);
    expect(quiet.masterConnections.map((m) => m.pendingReplies)).to.deep.equal([0, 0, 0]);
  });

  it('refuses a bad parallel with a ConfigError naming it (scan only)', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, '2', null]) {
      expect(() => loop.scan(c, { parallel: bad as never }), String(bad)).to.throw(ConfigError, /parallel must be a positive integer/);
    }
    expect(() => loop.hscan(c, 'h', { parallel: 2 } as never)).to.throw(ConfigError, /unknown option "parallel"/);
    // More than there are masters means all of them.
    expect(() => loop.scan(c, { parallel: 10 })).to.not.throw();
  });

  it('continues on the promoted replica when a master dies mid-pass, the other masters scanned meanwhile (every key still seen)', async () => {
    const n = 30_000;
    const report = await loop.massInsert(c, (function* () { for (let i = 0; i < n; i++) yield ['SET', `fk:${i}`, '1']; })());
    expect(report.errors.count).to.equal(0);
    // Wait until the replicas have every key, so the promoted one has them too.
    for (const m of cluster.masters()) await m.command('WAIT', 1, 5000);
    // Every master's pass runs at once (the default); this one dies while its pass is under way.
    const firstAddress = c.masterConnections[0]!.address.replace(/\/\d+$/, '');
    const victim = cluster.masters().find((m) => m.address === firstAddress)!;
    expect(victim, `a master at ${firstAddress}`).to.not.equal(undefined);
    const seen = new Set<string | Buffer>();
    let killing: Promise<unknown> | undefined;
    for await (const k of loop.scan(c, { count: 20 })) {
      seen.add(k);
      if (killing === undefined && seen.size === 200) {
        killing = cluster.killMaster(victim);
      }
    }
    await within(killing!, 60_000, 'the failover');
    expect(seen.size).to.equal(n);
    await cluster.restartNode(victim);
  });
});
