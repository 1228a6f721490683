// loop.cluster() against a real Redis Cluster (harness/cluster.ts): discovery, routing,
// splitting, redirections (MOVED, ASK, TRYAGAIN), live resharding, manual failover and a
// killed master, replica reads, NAT maps, a password-protected cluster and CLUSTERDOWN.
// Where a key lives is checked with the harness's raw client, never through lib/.
import { expect } from 'chai';
import {
  ClientStateError, ConnectionClosedError, EventLoop, Future, ReplyError, RoutingError, keySlot,
  type Cluster, type NodeAddress,
} from '../lib/index.js';
import { startCluster, type ClusterNode, type RedisCluster } from '../harness/index.js';
import { errorOf, outcome, waitUntil, within } from './support/helpers.js';

/** INFO commandstats calls of one command on a node (0 when it never ran). */
async function calls(node: ClusterNode, command: string): Promise<number> {
  const info = String(await node.command('INFO', 'commandstats'));
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return m === null ? 0 : Number(m[1]);
}

/** n keys prefix:0 .. prefix:n-1 (spread over many slots). */
function keysOver(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}:${i}`);
}

/** Until every replica is online in CLUSTER SHARDS (one at offset 0 is 'loading' and gets no reads). */
function replicasOnline(rc: RedisCluster): Promise<void> {
  return waitUntil(async () => !/loading/.test(JSON.stringify(await rc.masters()[0]!.command('CLUSTER', 'SHARDS'))), { timeout: 10_000, every: 50, what: 'every replica to be online in CLUSTER SHARDS' });
}

interface WriterTally {
  acked: Int32Array;
  writtenRejected: Int32Array;
  unwrittenRejected: Int32Array;
  /** The failures (the first 100,000: a runaway writer must not exhaust memory; `failed` counts all). */
  failures: Error[];
  failed: number;
  windows: number;
}

/** Writers still running: afterEach stops them, so a test that fails early leaves none behind. */
const runningWriters = new Set<{ stop(): Promise<WriterTally> }>();

/**
 * Runs INCR on `counters` (round robin, windows of `window` futures awaited together) until
 * stop() is called; tallies, per counter, what was acknowledged and what was rejected and how.
 */
function startWriters(loop: EventLoop, cluster: Cluster, counters: string[], window = 500): { tally: WriterTally; stop(): Promise<WriterTally> } {
  const tally: WriterTally = {
    acked: new Int32Array(counters.length), writtenRejected: new Int32Array(counters.length),
    unwrittenRejected: new Int32Array(counters.length), failures: [], failed: 0, windows: 0,
  };
  let stopping = false;
  let next = 0;
  const run = (async () => {
    while (!stopping) {
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < window; i++) {
        const idx = next++ % counters.length;
        batch.push(outcome(loop.sendCommand(cluster, 'INCR', counters[idx]!)).then((o) => {
          if (o.ok) tally.acked[idx]!++;
          else {
            if (tally.failed++ < 100_000) tally.failures.push(o.error);
            if (o.error instanceof ConnectionClosedError && o.error.written) tally.writtenRejected[idx]!++;
            else tally.unwrittenRejected[idx]!++;
          }
        }));
      }
      await Promise.all(batch);
      tally.windows++;
    }
  })();
  const writers = {
    tally,
    stop: async () => { stopping = true; runningWriters.delete(writers); await run; return tally; },
  };
  runningWriters.add(writers);
  return writers;
}

/** Every counter's value, read from its master with the raw client. */
async function readCounters(rc: RedisCluster, counters: string[]): Promise<number[]> {
  const byNode = new Map<ClusterNode, number[]>();
  const slots = counters.map((k) => keySlot(k));
  const owners = new Map<number, ClusterNode>();
  for (const s of new Set(slots)) owners.set(s, await rc.nodeForSlot(s));
  slots.forEach((s, i) => {
    const node = owners.get(s)!;
    const list = byNode.get(node) ?? [];
    list.push(i);
    byNode.set(node, list);
  });
  const values = new Array<number>(counters.length).fill(NaN);
  for (const [node, idx] of byNode) {
    const replies = await node.commands(idx.map((i) => ['GET', counters[i]!]));
    idx.forEach((i, j) => { values[i] = Number(replies[j] ?? 0); });
  }
  return values;
}

describe('Redis Cluster (loop.cluster)', function () {
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
    await Promise.all(rc.masters().map((m) => m.command('FLUSHALL')));
    loop = new EventLoop();
    cluster = loop.cluster([rc.seedUrl]);
  });
  afterEach(async () => {
    // A test that failed before stopping its writers: close first (every future settles), then stop them.
    const left = [...runningWriters];
    const closed = loop.close();
    await Promise.all(left.map((w) => w.stop()));
    await closed;
  });

  it('discovers every node and its slots from one seed', async () => {
    await within(cluster.whenReady(), 10_000, 'the slot map');
    const shards = await rc.shards();
    const nodes = cluster.nodes;
    expect(nodes.filter((n) => n.role === 'master')).to.have.length(3);
    expect(nodes.filter((n) => n.role === 'replica')).to.have.length(3);
    for (const sh of shards) {
      const info = nodes.find((n) => n.address === sh.master.address)!;
      expect(info, sh.master.address).to.not.equal(undefined);
      expect(info.id).to.equal(sh.master.id);
      expect(info.slots).to.deep.equal(sh.master.slots);
      for (const r of sh.replicas) {
        const ri = nodes.find((n) => n.address === r.address)!;
        expect(ri.role).to.equal('replica');
        expect(ri.masterAddress).to.equal(sh.master.address);
        expect(ri.slots).to.deep.equal([]);
      }
    }
    expect(cluster.masterConnections.map((c) => `${c.resolvedOptions.host}:${c.resolvedOptions.port}`))
      .to.have.members(shards.map((s) => s.master.address));
    expect(cluster.stats.refreshes).to.be.greaterThan(0);
  });

  it('stores each key on the master that owns its slot, spread over every master', async () => {
    const keys = keysOver('user', 600);
    const replies = await Future.all(keys.map((k) => loop.sendCommand(cluster, 'SET', k, `v-${k}`)));
    expect(replies.every((r) => r === 'OK')).to.equal(true);
    const perMaster = await Promise.all(rc.masters().map(async (m) => ({ m, keys: (await m.command('KEYS', 'user:*')) as string[] })));
    expect(perMaster.reduce((n, p) => n + p.keys.length, 0)).to.equal(keys.length);
    for (const p of perMaster) expect(p.keys.length, p.m.address).to.be.greaterThan(100);
    for (const k of keys.slice(0, 60)) {
      const owner = await rc.masterOfKey(k);
      expect(perMaster.find((p) => p.m === owner)!.keys, k).to.include(k);
      const conn = cluster.connectionFor(k);
      expect(`${conn.resolvedOptions.host}:${conn.resolvedOptions.port}`).to.equal(owner.address);
    }
    expect(await loop.sendCommand(cluster, 'GET', 'user:7')).to.equal('v-user:7');
  });

  it('hands per-command bigInt and returnBuffers to the node connection, split commands included', async () => {
    await loop.sendCommand(cluster, 'SET', 'big', '9007199254740993');
    expect(await loop.send(cluster, ['INCRBY', 'big', 1], { bigInt: true })).to.equal(9007199254740994n);
    expect(await loop.send(cluster, ['INCRBY', 'big', 0])).to.be.a('number');
    const got = await loop.send<Buffer>(cluster, ['GET', 'big'], { returnBuffers: true });
    expect(Buffer.isBuffer(got)).to.equal(true);
    const keys = keysOver('bi', 30);
    await loop.sendCommand(cluster, 'MSET', ...keys.flatMap((k) => [k, '1']));
    expect(await loop.send(cluster, ['EXISTS', ...keys], { bigInt: true })).to.equal(30n);
    expect(await loop.send(cluster, ['DEL', ...keys])).to.equal(30);
  });

  it('loop.close() right after sending, before the slot map is known, writes those commands instead of rejecting them', async () => {
    const set = loop.sendCommand(cluster, 'SET', 'early', 'v');
    const split = loop.sendCommand(cluster, 'MSET', ...keysOver('early', 20).flatMap((k) => [k, 'v']));
    await within(loop.close(), 15_000, 'loop.close()');
    expect(await set).to.equal('OK');
    expect(await split).to.equal('OK');
    expect(await (await rc.masterOfKey('early')).command('GET', 'early')).to.equal('v');
  });

  it('keeps keys under one hash tag together and sends a multi-key command on them whole', async () => {
    const keys = ['{user:1}:name', '{user:1}:mail', '{user:1}:age', 'x{user:1}y'];
    for (const k of keys) expect(keySlot(k)).to.equal(await rc.keySlot(k));
    const split = cluster.stats.split;
    expect(await loop.sendCommand(cluster, 'MSET', ...keys.flatMap((k) => [k, k.toUpperCase()]))).to.equal('OK');
    expect(await loop.sendCommand(cluster, 'SUNIONSTORE', '{user:1}:u', '{user:1}:a', '{user:1}:b')).to.equal(0);
    expect(cluster.stats.split).to.equal(split); // one slot: not split
    const owner = await rc.masterOfKey('user:1');
    expect(await owner.command('MGET', ...keys)).to.deep.equal(keys.map((k) => k.toUpperCase()));
  });

  it('splits cross-slot MGET, MSET, DEL and EXISTS per slot and merges the replies in order', async () => {
    const keys = keysOver('k', 40);
    expect(new Set(await Promise.all(keys.map((k) => rc.masterOfKey(k)))).size).to.equal(3);
    expect(await loop.sendCommand(cluster, 'MSET', ...keys.flatMap((k) => [k, `v-${k}`]))).to.equal('OK');
    for (const k of keys.slice(0, 10)) expect(await (await rc.masterOfKey(k)).command('GET', k)).to.equal(`v-${k}`);
    const asked = [...keys].reverse().concat(['missing:1', keys[3]!]);
    expect(await loop.sendCommand(cluster, 'MGET', ...asked)).to.deep.equal(asked.map((k) => (k.startsWith('missing') ? null : `v-${k}`)));
    expect(await loop.sendCommand(cluster, 'EXISTS', ...keys, 'missing:2', keys[0]!)).to.equal(keys.length + 1);
    expect(await loop.sendCommand(cluster, 'DEL', ...keys.slice(0, 25), 'missing:3')).to.equal(25);
    expect(await loop.sendCommand(cluster, 'EXISTS', ...keys)).to.equal(15);
    expect(cluster.stats.split).to.be.greaterThanOrEqual(5);
  });

  it('sends commands given before the slot map is known in the order they were given', async () => {
    const fresh = loop.cluster([rc.seedUrl]);
    expect(fresh.nodes).to.deep.equal([]); // nothing known yet
    const futures = [];
    for (let i = 0; i < 200; i++) futures.push(loop.sendCommand(fresh, 'RPUSH', `list:${i % 3}`, String(i)));
    futures.push(loop.sendCommand(fresh, 'SET', 'after', 'x'), loop.sendCommand(fresh, 'GET', 'after'));
    const replies = await Future.all(futures);
    expect(replies.at(-1)).to.equal('x');
    for (let l = 0; l < 3; l++) {
      const owner = await rc.masterOfKey(`list:${l}`);
      const want = Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 3 === l).map(String);
      expect(await owner.command('LRANGE', `list:${l}`, 0, -1)).to.deep.equal(want);
    }
  });

  it('refuses blocking commands, MULTI and cross-slot commands before writing anything', async () => {
    await cluster.whenReady();
    const before = await Promise.all(rc.masters().map((m) => calls(m, 'sunion')));
    for (const cmd of <Array<[string, ...string[]]>>[['BLPOP', 'q', '0'], ['MULTI'], ['WATCH', 'a'], ['SUNION', 'a', 'b'], ['BRPOPLPUSH', 'a', 'b', '1'], ['XREAD', 'BLOCK', '0', 'STREAMS', 's', '$']]) {
      const err = errorOf(await outcome(loop.send(cluster, cmd)));
      expect(err, cmd.join(' ')).to.be.instanceOf(RoutingError);
      expect(err.message, cmd.join(' ')).to.match(/refused|hash to different slots/);
    }
    expect(errorOf(await outcome(loop.sendCommand(cluster, 'BLPOP', 'q', '0'))).message).to.match(/connectionFor/);
    expect(await Promise.all(rc.masters().map((m) => calls(m, 'sunion')))).to.deep.equal(before);
    // The way out the message names: a connection of one's own to the key's node.
    const own = loop.connect(cluster.connectionFor('q').resolvedOptions);
    const popped = loop.sendCommand(own, 'BLPOP', 'q', '5');
    await loop.sendCommand(cluster, 'RPUSH', 'q', 'job');
    expect(await popped).to.deep.equal(['q', 'job']);
  });

  it("reads from replicas with readFrom 'replica' and still writes to masters", async () => {
    // Written first, so every replica has synced something: a replica CLUSTER SHARDS still
    // calls 'loading' (offset 0) is left out of reads until a later map says it is online.
    const keys = keysOver('r', 300);
    await Future.all(keys.map((k) => loop.sendCommand(cluster, 'SET', k, k)));
    await Promise.all(rc.masters().map((m) => m.command('WAIT', 1, 2000)));
    await replicasOnline(rc);
    const reader = loop.cluster([rc.seedUrl], { readFrom: 'replica' });
    await reader.whenReady();
    await Promise.all(rc.nodes.filter((n) => n.isRunning).map((n) => n.command('CONFIG', 'RESETSTAT')));
    await Future.all(keys.map((k) => loop.sendCommand(reader, 'SET', k, k)));
    const values = await Future.all(keys.map((k) => loop.sendCommand(reader, 'GET', k)));
    expect(values).to.deep.equal(keys);
    const masterGets = await Promise.all(rc.masters().map((m) => calls(m, 'get')));
    const replicaGets = await Promise.all(rc.replicas().map((r) => calls(r, 'get')));
    const masterSets = await Promise.all(rc.masters().map((m) => calls(m, 'set')));
    expect(masterGets).to.deep.equal([0, 0, 0]);
    expect(replicaGets.reduce((a, b) => a + b)).to.equal(300);
    for (const n of replicaGets) expect(n).to.be.greaterThan(50);
    expect(masterSets.reduce((a, b) => a + b)).to.equal(300);
    expect(await Promise.all(rc.replicas().map((r) => calls(r, 'readonly')))).to.deep.equal([1, 1, 1]); // one READONLY connection each, opened at the first read
  });

  it('maps announced addresses through natMap', async () => {
    const seen = new Set<string>();
    const natted = loop.cluster([rc.seedUrl], {
      natMap: (a: NodeAddress) => { seen.add(`${a.host}:${a.port}`); return { host: 'localhost', port: a.port }; },
    });
    await natted.whenReady();
    expect([...seen]).to.include.members(rc.nodes.map((n) => n.address));
    expect(natted.nodes.map((n) => n.address).every((a) => a.startsWith('localhost:'))).to.equal(true);
    await Future.all(keysOver('nat', 50).map((k) => loop.sendCommand(natted, 'SET', k, k)));
    expect(await loop.sendCommand(natted, 'MGET', 'nat:1', 'nat:2')).to.deep.equal(['nat:1', 'nat:2']);
    // An object map: the seed's own address maps to a wrong port would fail; map every node to itself.
    const table = Object.fromEntries(rc.nodes.map((n) => [n.address, { host: n.host, port: n.port }]));
    const byTable = loop.cluster([rc.seedUrl], { natMap: table });
    expect(await loop.sendCommand(byTable, 'GET', 'nat:3')).to.equal('nat:3');
  });

  it('closes every node connection on loop.close() and loop.disconnect()', async () => {
    await loop.close(); // the suite's own cluster: only this test's connections remain
    // Client connections on each node, the raw CLIENT LIST one included, replication links not.
    const clients = () => Promise.all(rc.nodes.map(async (n) =>
      String(await n.command('CLIENT', 'LIST')).split('\n').filter((l) => /^id=/.test(l) && !/flags=[^ ]*[SM]/.test(l)).length));
    await replicasOnline(rc);
    for (const end of ['close', 'disconnect'] as const) {
      const own = new EventLoop();
      const reader = own.cluster([rc.seedUrl], { readFrom: 'replica' });
      await Future.all(keysOver('c', 30).flatMap((k) => [own.sendCommand(reader, 'GET', k), own.sendCommand(reader, 'SET', k, k)]));
      for (const n of await clients()) expect(n, `${end}: before`).to.be.greaterThanOrEqual(2); // a master or a READONLY connection on every node
      if (end === 'close') await own.close();
      else own.disconnect();
      await waitUntil(async () => (await clients()).every((n) => n === 1), { timeout: 5000, every: 50, what: `every connection of the cluster to end after ${end}()` });
      expect(() => own.cluster([rc.seedUrl])).to.throw(ClientStateError);
      expect(errorOf(await outcome(own.sendCommand(reader, 'GET', 'x')))).to.be.instanceOf(Error);
    }
  });

  it('follows MOVED after a slot is moved by hand, then goes straight to the new owner', async () => {
    await cluster.whenReady();
    const topo: Cluster[] = [];
    loop.on('topology', (c) => topo.push(c as Cluster));
    const key = 'moved:key';
    await loop.sendCommand(cluster, 'SET', key, 'one');
    const slot = keySlot(key);
    const from = await rc.nodeForSlot(slot);
    const to = rc.masters().find((m) => m !== from)!;
    await rc.moveSlot(slot, to);
    // Commands sent while the map is stale, in one batch: all follow MOVED, in order.
    const burst = [];
    for (let i = 0; i < 50; i++) burst.push(loop.sendCommand(cluster, 'APPEND', key, `-${i}`));
    burst.push(loop.sendCommand(cluster, 'GET', key));
    const replies = await Future.all(burst);
    const want = 'one' + Array.from({ length: 50 }, (_, i) => `-${i}`).join('');
    expect(replies.at(-1)).to.equal(want);
    expect(await to.command('GET', key)).to.equal(want);
    expect(cluster.stats.moved).to.be.greaterThan(0);
    await waitUntil(async () => topo.length > 0, { timeout: 5000, every: 50, what: "the 'topology' event" });
    expect(topo[0]).to.equal(cluster);
    expect(cluster.nodes.find((n) => n.address === to.address)!.slots.some(([a, b]) => slot >= a && slot <= b)).to.equal(true);
    const moved = cluster.stats.moved;
    await Future.all(Array.from({ length: 20 }, () => loop.sendCommand(cluster, 'GET', key)));
    expect(cluster.stats.moved).to.equal(moved);
  });

  it('keeps the order of one slot\'s commands across a MOVED, later commands included', async () => {
    await cluster.whenReady();
    const key = 'order:list';
    const slot = keySlot(key);
    await loop.sendCommand(cluster, 'RPUSH', key, 'start');
    await rc.moveSlot(slot, rc.masters().find((m) => m.address !== `${cluster.connectionFor(key).resolvedOptions.host}:${cluster.connectionFor(key).resolvedOptions.port}`)!);
    // A burst the stale map sends to the old owner: its MOVED replies come back over several
    // reads. Meanwhile, on every turn of the event loop, more commands for the same slot.
    let n = 0;
    const futures = [];
    for (; n < 20000; n++) futures.push(loop.sendCommand(cluster, 'RPUSH', key, String(n)));
    const burst = Future.all(futures);
    let done = false;
    void burst.then(() => { done = true; }, () => { done = true; });
    while (!done) {
      await new Promise((r) => setImmediate(r));
      for (let i = 0; i < 20; i++) futures.push(loop.sendCommand(cluster, 'RPUSH', key, String(n++)));
    }
    await Future.all(futures);
    const owner = await rc.masterOfKey(key);
    const list = (await owner.command('LRANGE', key, 0, -1)) as string[];
    expect(list.length, `${n - 20000} sent during the burst`).to.equal(n + 1);
    const firstOutOfOrder = list.slice(1).findIndex((v, i) => v !== String(i));
    expect(firstOutOfOrder, `element ${firstOutOfOrder + 1} is ${list[firstOutOfOrder + 1]}`).to.equal(-1);
    expect(cluster.stats.moved).to.be.greaterThan(0);
  });

  it('follows ASK while a slot migrates with keys on both sides, and retries TRYAGAIN until it ends', async () => {
    await cluster.whenReady();
    const keys = Array.from({ length: 40 }, (_, i) => `{mig}:${i}`);
    await Future.all(keys.map((k) => loop.sendCommand(cluster, 'SET', k, `v${k}`)));
    const slot = keySlot('mig');
    const from = await rc.nodeForSlot(slot);
    const to = rc.masters().find((m) => m !== from)!;
    const migration = await rc.beginMigration(slot, to);
    expect(await migration.migrateSomeKeys(20)).to.equal(20);
    expect((await migration.keysOnSource()).length).to.equal(20);
    // Single-key reads of keys on both sides, and writes of new keys (which go to the target).
    const values = await Future.all(keys.map((k) => loop.sendCommand(cluster, 'GET', k)));
    expect(values).to.deep.equal(keys.map((k) => `v${k}`));
    expect(await loop.sendCommand(cluster, 'SET', '{mig}:new', 'n')).to.equal('OK');
    expect(cluster.stats.ask).to.be.greaterThan(0);
    // A multi-key command over keys on both sides is answered TRYAGAIN until the slot settles.
    const mget = outcome(loop.sendCommand(cluster, 'MGET', ...keys));
    await new Promise((r) => setTimeout(r, 100));
    await migration.finish();
    const got = await within(mget, 10_000, 'MGET across a migration');
    expect(got.ok ? got.value : got.error.message).to.deep.equal(keys.map((k) => `v${k}`));
    expect(cluster.stats.tryAgain).to.be.greaterThan(0);
    expect(await to.command('GET', '{mig}:new')).to.equal('n');
  });

  it('loses no INCR during a live resharding of 1000+ slots', async function () {
    this.timeout(240_000);
    const counters = keysOver('ctr', 3000);
    await cluster.whenReady();
    const writers = startWriters(loop, cluster, counters);
    const to = rc.masters()[0]!;
    await rc.reshard(1200, 'all', to, { timeoutMs: 200_000 });
    const tally = await writers.stop();
    expect(tally.failures.map((e) => e.message).slice(0, 5)).to.deep.equal([]);
    expect(tally.windows).to.be.greaterThan(2);
    const values = await readCounters(rc, counters);
    const wrong = counters.filter((_, i) => values[i] !== tally.acked[i]);
    expect(wrong.slice(0, 5)).to.deep.equal([]);
    expect(cluster.stats.moved + cluster.stats.ask).to.be.greaterThan(0);
  });

  it('loses no command during CLUSTER FAILOVER on a replica', async () => {
    const counters = keysOver('fo', 2000);
    await cluster.whenReady();
    const writers = startWriters(loop, cluster, counters);
    await new Promise((r) => setTimeout(r, 200));
    const master = await rc.masterOfKey('fo:1');
    const replica = rc.replicasOf(master)[0]!;
    await rc.failover(replica);
    await new Promise((r) => setTimeout(r, 300));
    const tally = await writers.stop();
    expect(tally.failures.map((e) => e.message).slice(0, 5)).to.deep.equal([]);
    const values = await readCounters(rc, counters);
    expect(counters.filter((_, i) => values[i] !== tally.acked[i]).slice(0, 5)).to.deep.equal([]);
    // The promoted replica now serves the slots (once the client has read a map that says so).
    const servedBy = () => { const c = cluster.connectionFor('fo:1'); return `${c.resolvedOptions.host}:${c.resolvedOptions.port}`; };
    await waitUntil(async () => { await loop.sendCommand(cluster, 'GET', 'fo:1'); return servedBy() === replica.address; }, { timeout: 10_000, every: 50, what: 'the client to route fo:1 to the promoted replica' });
  });

  it('survives SIGKILL of a master: every future settles, later commands succeed, counters stay within their bounds', async () => {
    const counters = keysOver('kill', 2000);
    await cluster.whenReady();
    const victim = rc.masters()[1]!;
    const replica = rc.replicasOf(victim)[0]!;
    const writers = startWriters(loop, cluster, counters, 300);
    await new Promise((r) => setTimeout(r, 300));
    // Redis replicates asynchronously: an acknowledged INCR the replica had not received yet
    // dies with the master, which no client can prevent. Pause writes on the victim and wait
    // until its replica has everything acknowledged, so the bounds below test the client only.
    // The writers keep sending; what they send to the victim now is written and never answered.
    await victim.command('CLIENT', 'PAUSE', 10_000, 'WRITE');
    const offset = Number(/master_repl_offset:(\d+)/.exec(String(await victim.command('INFO', 'replication')))![1]);
    await waitUntil(async () => Number(/slave_repl_offset:(\d+)/.exec(String(await replica.command('INFO', 'replication')))![1]) >= offset, { timeout: 10_000, every: 50, what: 'the replica to catch up' });
    const promoted = await rc.killMaster(victim);
    const promotedAt = Date.now();
    // Commands sent after the promotion succeed.
    const after = await within(Future.all(counters.slice(0, 300).map((k) => loop.sendCommand(cluster, 'EXISTS', k))), 15_000, 'commands sent after the promotion');
    expect(after.every((n) => n === 1)).to.equal(true);
    const tally = await within(writers.stop(), 15_000, 'every future to settle after the promotion');
    expect(Date.now() - promotedAt).to.be.lessThan(15_000);
    const written = tally.writtenRejected.reduce((a, b) => a + b, 0);
    expect(written).to.be.greaterThan(0); // the paused ones, at least
    for (const e of tally.failures) {
      expect(e, e.message).to.be.instanceOf(ConnectionClosedError);
      expect(e.message).to.match((e as ConnectionClosedError).written ? /may have run/ : /never written/);
    }
    const values = await readCounters(rc, counters);
    const outside = counters.filter((_, i) => values[i]! < tally.acked[i]! || values[i]! > tally.acked[i]! + tally.writtenRejected[i]!);
    expect(outside.slice(0, 5).map((k) => `${k}=${values[counters.indexOf(k)]} acked ${tally.acked[counters.indexOf(k)]}`)).to.deep.equal([]);
    const movedKey = counters.find((k) => promoted.slots.some(([a, b]) => keySlot(k) >= a && keySlot(k) <= b))!;
    const conn = cluster.connectionFor(movedKey);
    expect(`${conn.resolvedOptions.host}:${conn.resolvedOptions.port}`).to.equal(promoted.address);
    expect(cluster.nodes.find((n) => n.address === promoted.address)!.role).to.equal('master');
    expect(cluster.masterConnections).to.have.length(3);
    await rc.restartNode(victim);
  });
});

describe('Redis Cluster with a password (loop.cluster)', function () {
  this.timeout(120_000);
  let rc: RedisCluster;
  let loop: EventLoop;

  before(async () => {
    rc = await startCluster({ masters: 3, replicasPerMaster: 0, password: 's3cret', nodeTimeoutMs: 1000 });
  });
  after(async () => {
    await rc?.stop();
  });
  beforeEach(() => { loop = new EventLoop(); });
  afterEach(async () => { await loop.close(); });

  it('works with the password in the seed URL or in the options (seed as a URL or as connection options)', async () => {
    const [a, b] = [rc.nodes[0]!, rc.nodes[1]!];
    const byUrl = loop.cluster([`redis://:s3cret@${a.address}`]);
    const byOptions = loop.cluster([{ host: b.host, port: b.port }], { password: 's3cret' });
    const keys = keysOver('pw', 100);
    await Future.all(keys.map((k) => loop.sendCommand(byUrl, 'SET', k, k)));
    expect(await loop.sendCommand(byOptions, 'MGET', ...keys)).to.deep.equal(keys);
    const wrong = loop.cluster([b.url], { password: 'nope', connectTimeout: 1500 });
    const err = errorOf(await outcome(within(loop.sendCommand(wrong, 'GET', 'pw:1'), 10_000, 'a wrong password to fail')));
    expect(err.message).to.match(/WRONGPASS|AUTH|password|answered/i);
  });

  it('rejects with a clear error within clusterDownTimeout when a master and its slots are gone', async () => {
    const cluster = loop.cluster([rc.seedUrl], { password: 's3cret', clusterDownTimeout: 1500 });
    await cluster.whenReady();
    const victim = rc.masters()[2]!;
    const lost = keysOver('down', 200);
    const onVictim = [] as string[];
    const elsewhere = [] as string[];
    for (const k of lost) ((await rc.masterOfKey(k)) === victim ? onVictim : elsewhere).push(k);
    victim.server.kill('SIGKILL');
    await victim.server.waitExit();
    // Until the others flag it failed they answer; then they answer CLUSTERDOWN.
    await waitUntil(async () => /cluster_state:fail/.test(String(await rc.nodes[0]!.command('CLUSTER', 'INFO'))), { timeout: 15_000, every: 50, what: 'the cluster to say it is down' });
    const started = Date.now();
    const results = await within(Promise.all([...onVictim.slice(0, 20), ...elsewhere.slice(0, 20)].map((k) => outcome(loop.sendCommand(cluster, 'GET', k)))), 10_000, 'CLUSTERDOWN to give up');
    const took = Date.now() - started;
    expect(took).to.be.lessThan(8000);
    for (const r of results) {
      const e = errorOf(r);
      expect(e.message).to.match(/clusterDownTimeout/);
      if (e instanceof ConnectionClosedError) expect(e.written).to.equal(false);
      else expect(e).to.be.instanceOf(ReplyError);
    }
  });
});
