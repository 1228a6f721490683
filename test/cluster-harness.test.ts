// Self-test of the Redis Cluster harness (test/support/cluster.ts). It talks to the nodes with
// the raw RESP client only, so a failure here is the harness's, never lib/'s.
import { expect } from 'chai';
import { CLUSTER_SLOTS, runningServers, startCluster, type ClusterNode, type RedisCluster } from './support/index.js';

/** Slots served by each master, summed. */
function slotCount(node: ClusterNode): number {
  return node.slots.reduce((n, [s, e]) => n + e - s + 1, 0);
}

describe('cluster harness (test/support/cluster.ts)', function () {
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
});
