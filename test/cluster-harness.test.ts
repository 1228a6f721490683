// Self-test of the Redis Cluster harness (harness/cluster.ts). It talks to the nodes with
// the raw RESP client only, so a failure here is the harness's, never lib/'s.
import fs from 'node:fs';
import { expect } from 'chai';
import { CLUSTER_SLOTS, rawCommands, runningServers, startCluster, type ClusterNode, type RedisCluster } from '../harness/index.js';

/** Slots served by each master, summed. */
function slotCount(node: ClusterNode): number {
  return node.slots.reduce((n, [s, e]) => n + e - s + 1, 0);
}

describe('cluster harness (harness/cluster.ts)', function () {
  this.timeout(120_000);
  let cluster: RedisCluster;

  before(async function () {
    cluster = await startCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('starts 3 masters covering all 16384 slots, each with a replica', async () => {
    expect(cluster.nodes).to.have.length(6);
    const masters = cluster.masters();
    expect(masters).to.have.length(3);
    expect(cluster.replicas()).to.have.length(3);
    expect(masters.reduce((n, m) => n + slotCount(m), 0)).to.equal(CLUSTER_SLOTS);
    for (const m of masters) {
      expect(cluster.replicasOf(m)).to.have.length(1);
      expect(await m.command('CLUSTER', 'MYID')).to.equal(m.id);
    }
    for (const r of cluster.replicas()) {
      expect(String(await r.command('INFO', 'replication'))).to.match(/role:slave/);
      expect(cluster.nodeById(r.masterId!).role).to.equal('master');
    }
    const info = String(await masters[0]!.command('CLUSTER', 'INFO'));
    expect(info).to.match(/cluster_state:ok/);
    expect(info).to.match(/cluster_known_nodes:6/);
    expect(cluster.seedUrl).to.match(/^redis:\/\/127\.0\.0\.1:\d+$/);
    for (const n of cluster.nodes) expect(runningServers()).to.include(n.server);
    const shards = await cluster.shards();
    expect(shards.map((sh) => sh.master)).to.have.members(masters);
    for (const sh of shards) expect(sh.replicas.map((r) => r.masterId)).to.deep.equal([sh.master.id]);
  });

  it('predicts where keys live: CLUSTER KEYSLOT plus the slot map', async () => {
    expect(await cluster.keySlot('foo')).to.equal(12182);
    expect(await cluster.keySlot('{user}:1')).to.equal(await cluster.keySlot('user'));
    const owners = new Set<ClusterNode>();
    for (let i = 0; i < 30; i++) {
      const key = `k:${i}`;
      const owner = await cluster.masterOfKey(key);
      owners.add(owner);
      expect(await owner.command('SET', key, String(i))).to.equal('OK');
      expect(await owner.command('GET', key)).to.equal(String(i));
      const other = cluster.masters().find((m) => m !== owner)!;
      const [reply] = await other.commands([['GET', key]]);
      expect((reply as Error).message).to.match(new RegExp(`^MOVED ${await cluster.keySlot(key)} ${owner.address}$`));
    }
    expect(owners.size).to.equal(3);
  });

  it('moveSlot moves a slot with its keys to another master', async () => {
    const slot = await cluster.keySlot('{moved}');
    const from = await cluster.nodeForSlot(slot);
    const to = cluster.masters().find((m) => m !== from)!;
    const keys = Array.from({ length: 250 }, (_, i) => `{moved}:${i}`);
    await from.commands(keys.map((k) => ['SET', k, k]));
    await cluster.moveSlot(slot, to);
    expect(await cluster.nodeForSlot(slot)).to.equal(to);
    expect(to.slots.some(([s, e]) => slot >= s && slot <= e)).to.equal(true);
    expect(await to.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(250);
    expect(await from.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(0);
    expect(await to.command('GET', '{moved}:7')).to.equal('{moved}:7');
    // Every node, replicas included, now redirects the slot to the new owner.
    for (const n of cluster.nodes.filter((x) => x !== to)) {
      const [reply] = await n.commands([['GET', '{moved}:7']]);
      expect((reply as Error).message).to.equal(`MOVED ${slot} ${to.address}`);
    }
  });

  it('beginMigration leaves a slot IMPORTING/MIGRATING with keys on both sides; finish() completes it', async () => {
    const slot = await cluster.keySlot('{half}');
    const from = await cluster.nodeForSlot(slot);
    const to = cluster.masters().find((m) => m !== from)!;
    await from.commands(Array.from({ length: 20 }, (_, i) => ['SET', `{half}:${i}`, String(i)]));
    const migration = await cluster.beginMigration(slot, to);
    expect(migration.source).to.equal(from);
    expect(migration.target).to.equal(to);
    expect(await migration.migrateSomeKeys(5)).to.equal(5);
    expect(await from.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(15);
    expect(await to.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(5);
    expect(await migration.keysOnSource()).to.have.length(15);
    const myself = (text: unknown) => String(text).split('\n').find((l) => l.includes('myself'))!;
    expect(myself(await from.command('CLUSTER', 'NODES'))).to.include(`[${slot}->-${to.id}]`);
    expect(myself(await to.command('CLUSTER', 'NODES'))).to.include(`[${slot}-<-${from.id}]`);
    // A key that moved: the source answers ASK, the target serves it after ASKING.
    const moved = String((await to.command('CLUSTER', 'GETKEYSINSLOT', slot, 1) as string[])[0]);
    const [ask] = await from.commands([['GET', moved]]);
    expect((ask as Error).message).to.equal(`ASK ${slot} ${to.address}`);
    const [, value] = await to.commands([['ASKING'], ['GET', moved]]);
    expect(value).to.equal(moved.split(':')[1]);
    // The cluster still counts as converged while the slot is open on purpose.
    await cluster.waitForConvergence();
    await migration.finish();
    expect(await cluster.nodeForSlot(slot)).to.equal(to);
    expect(await to.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(20);
    expect(myself(await from.command('CLUSTER', 'NODES'))).not.to.include('[');
    expect(myself(await to.command('CLUSTER', 'NODES'))).not.to.include('[');
  });

  it('reshard moves N slots, with their keys, through redis-cli without blocking the test', async () => {
    const [from, to] = cluster.masters();
    const before = { from: slotCount(from!), to: slotCount(to!) };
    const keys = Array.from({ length: 300 }, (_, i) => `resharded:${i}`);
    for (const k of keys) await (await cluster.masterOfKey(k)).command('SET', k, k);
    const resharding = cluster.reshard(100, from!, to!);
    // redis-cli runs as a child process: the test's event loop keeps turning meanwhile.
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    await resharding;
    clearInterval(ticker);
    expect(ticks).to.be.greaterThan(0);
    expect(slotCount(from!)).to.equal(before.from - 100);
    expect(slotCount(to!)).to.equal(before.to + 100);
    for (const k of keys) expect(await (await cluster.masterOfKey(k)).command('GET', k)).to.equal(k);
  });

  it('failover promotes a replica with CLUSTER FAILOVER and demotes its master', async () => {
    const master = cluster.masters()[0]!;
    const replica = cluster.replicasOf(master)[0]!;
    const slots = JSON.stringify(master.slots);
    await cluster.failover(replica);
    expect(replica.role).to.equal('master');
    expect(JSON.stringify(replica.slots)).to.equal(slots);
    expect(master.role).to.equal('replica');
    expect(master.masterId).to.equal(replica.id);
    expect(String(await master.command('INFO', 'replication'))).to.match(/master_link_status:up/);
  });

  it('killMaster SIGKILLs a master and resolves with the promoted replica; restartNode brings it back as a replica', async () => {
    const master = cluster.masters()[1]!;
    const replica = cluster.replicasOf(master)[0]!;
    const slots = JSON.stringify(master.slots);
    const promoted = await cluster.killMaster(master);
    expect(promoted).to.equal(replica);
    expect(promoted.role).to.equal('master');
    expect(JSON.stringify(promoted.slots)).to.equal(slots);
    expect(master.isRunning).to.equal(false);
    expect(cluster.masters()).not.to.include(master);
    await cluster.restartNode(master);
    expect(master.isRunning).to.equal(true);
    expect(master.role).to.equal('replica');
    expect(master.masterId).to.equal(promoted.id);
    expect(cluster.masters()).to.have.length(3);
    expect(cluster.replicas()).to.have.length(3);
  });
});

describe('cluster harness: password, teardown, missing redis-cli or valkey-cli', function () {
  this.timeout(120_000);

  it('starts, replicas sync with masterauth, and the harness authenticates its own commands', async () => {
    const cluster = await startCluster({ password: 'cl-s3cret' });
    try {
      expect(cluster.masters()).to.have.length(3);
      expect(cluster.replicas()).to.have.length(3);
      const node = cluster.masters()[0]!;
      const [reply] = await rawCommands({ host: node.host, port: node.port }, [['PING']]);
      expect((reply as Error).message).to.match(/NOAUTH/);
      const owner = await cluster.masterOfKey('pw-key');
      expect(await owner.command('SET', 'pw-key', 'v')).to.equal('OK');
      const slot = await cluster.keySlot('pw-key');
      await cluster.moveSlot(slot, cluster.masters().find((m) => m !== owner)!);
      expect(await (await cluster.masterOfKey('pw-key')).command('GET', 'pw-key')).to.equal('v');
    } finally {
      await cluster.stop();
    }
    for (const n of cluster.nodes) {
      expect(n.isRunning).to.equal(false);
      expect(fs.existsSync(n.server.dir)).to.equal(false);
      expect(runningServers()).not.to.include(n.server);
    }
  });

  // Both cases run whichever family the suite runs on: neither needs a binary.
  function withEnv(vars: Record<string, string | undefined>, body: () => Promise<unknown>): Promise<unknown> {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    const set = (v: Record<string, string | undefined>) => {
      for (const [k, value] of Object.entries(v)) {
        if (value === undefined) delete process.env[k];
        else process.env[k] = value;
      }
    };
    set(vars);
    return body().finally(() => set(saved));
  }

  it('says to install redis-tools when redis-cli is missing from PATH', () =>
    withEnv({ PATH: '/nonexistent', REDLOOP_SERVER: undefined, REDLOOP_SERVER_DIR: undefined }, () =>
      startCluster().then(
        () => expect.fail('startCluster should have failed'),
        (err: Error) => expect(err.message).to.match(/redis-cli not found on PATH.*redis-tools/),
      )));

  it('says where it looked when valkey-cli is missing (REDLOOP_SERVER=valkey)', () =>
    withEnv({ REDLOOP_SERVER: 'valkey', REDLOOP_SERVER_DIR: '/nonexistent/valkey' }, () =>
      startCluster().then(
        () => expect.fail('startCluster should have failed'),
        (err: Error) => expect(err.message).to.match(/valkey-cli not found in \/nonexistent\/valkey \(REDLOOP_SERVER_DIR=/),
      )));
});
