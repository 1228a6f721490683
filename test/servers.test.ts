// Redis and Valkey: what differs between the server families the suite runs on (REDLOOP_SERVER,
// harness/servers.ts), and how the client handles each difference. Every test runs on both
// families; where the servers answer differently, the test says what each one answers, so a
// server release that changes it fails here first. See docs/servers.md.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { EventLoop, keySlot, type Cluster } from '../lib/index.js';
import { parseClusterShards, parseClusterSlots, type TopologyShard } from '../lib/routing/cluster/topology.js';
import { startCluster, startRedis, type ClusterNode, type RedisCluster, type RedisServer } from '../harness/index.js';
import {
  defaultValkeyDir, missingBinaryMessage, parseServerVersion, serverBinaries, serverFromInfo, serverVersion,
  type ServerVersion,
} from '../harness/servers.js';

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));

/** A flat RESP2 map (HELLO, CLUSTER SHARDS entries) as a Map. */
function toMap(flat: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  const list = flat as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) m.set(String(list[i]), list[i + 1]);
  return m;
}

/** Polls `check` every 50 ms until it is true; fails naming `what` after `ms`. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function owners(shards: TopologyShard[]): string[] {
  return shards.map((s) => `${s.slots.map((r) => r.join('-')).join(',')} ${s.master.host}:${s.master.port}`).sort();
}

describe('server families: choosing the binaries (harness/servers.ts)', () => {
  it('runs redis-server and redis-cli from PATH by default', () => {
    const b = serverBinaries({});
    expect(b).to.include({ family: 'redis', server: 'redis-server', cli: 'redis-cli', benchmark: 'redis-benchmark', dir: undefined });
    expect(missingBinaryMessage('server', b)).to.match(/redis-server not found on PATH: install it \(Debian: apt-get install redis-server\)/);
  });

  it('REDLOOP_SERVER=valkey runs valkey-* from ../shared/servers/valkey-8.0.1 next to the checkout', () => {
    const b = serverBinaries({ REDLOOP_SERVER: 'valkey' });
    const root = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
    expect(defaultValkeyDir()).to.equal(path.resolve(root, '../shared/servers/valkey-8.0.1'));
    expect(b).to.include({
      family: 'valkey', dir: defaultValkeyDir(), server: path.join(defaultValkeyDir(), 'valkey-server'),
      cli: path.join(defaultValkeyDir(), 'valkey-cli'), benchmark: path.join(defaultValkeyDir(), 'valkey-benchmark'),
    });
  });

  it('REDLOOP_SERVER_DIR names the folder; the family follows the binaries in it unless REDLOOP_SERVER says', () => {
    expect(serverBinaries({ REDLOOP_SERVER_DIR: defaultValkeyDir() }).family).to.equal(fs.existsSync(path.join(defaultValkeyDir(), 'valkey-server')) ? 'valkey' : 'redis');
    const redisHere = serverBinaries({ REDLOOP_SERVER_DIR: '/opt/redis/bin' });
    expect(redisHere).to.include({ family: 'redis', server: '/opt/redis/bin/redis-server', cli: '/opt/redis/bin/redis-cli' });
    const valkeyThere = serverBinaries({ REDLOOP_SERVER: 'valkey', REDLOOP_SERVER_DIR: '/opt/valkey' });
    expect(valkeyThere).to.include({ family: 'valkey', server: '/opt/valkey/valkey-server' });
    expect(missingBinaryMessage('cli', valkeyThere)).to.match(/^valkey-cli not found in \/opt\/valkey \(REDLOOP_SERVER_DIR=\/opt\/valkey\)/);
    expect(() => serverBinaries({ REDLOOP_SERVER: 'keydb' })).to.throw(/REDLOOP_SERVER=keydb: expected "redis" or "valkey"/);
  });

  it('a missing binary is a clear message, not a bare ENOENT', async () => {
    const bins = serverBinaries({ REDLOOP_SERVER: 'valkey', REDLOOP_SERVER_DIR: '/nonexistent/valkey' });
    await startRedis({ binaries: bins }).then(
      () => expect.fail('startRedis should have failed'),
      (err: Error) => expect(err.message).to.match(/^valkey-server not found in \/nonexistent\/valkey \(REDLOOP_SERVER_DIR=.*REDLOOP_SERVER_DIR names another folder/),
    );
  });

  it('reads the family and release from --version and from INFO server', () => {
    expect(parseServerVersion('Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0'))
      .to.deep.equal({ family: 'redis', version: '7.0.15' });
    expect(parseServerVersion('Valkey server v=8.0.1 sha=00000000:1 malloc=jemalloc-5.3.0 bits=64 build=9e6c2ed1c70f3c02'))
      .to.deep.equal({ family: 'valkey', version: '8.0.1' });
    expect(serverFromInfo('# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n'))
      .to.deep.equal({ family: 'redis', version: '7.0.15', redisVersion: '7.0.15' });
    expect(serverFromInfo('# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n'))
      .to.deep.equal({ family: 'valkey', version: '8.0.1', redisVersion: '7.2.4' });
  });
});

describe('server families: the handshake and the server\'s name', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let binary: ServerVersion;

  before(async () => {
    binary = await serverVersion();
    server = await startRedis();
  });
  after(() => server?.stop());

  it('the server that runs is the family REDLOOP_SERVER chose', async () => {
    expect(server.family).to.equal(serverBinaries().family);
    expect(serverFromInfo(String(await server.command('INFO', 'server')))).to.include({ family: binary.family, version: binary.version });
  });

  it('HELLO names the family in `server` and its own release in `version`; INFO redis_version is the Redis release it is compatible with', async () => {
    const hello = toMap(await server.command('HELLO', '2'));
    const info = String(await server.command('INFO', 'server'));
    const redisVersion = /^redis_version:(\S+)/m.exec(info)?.[1];
    expect(hello.get('server')).to.equal(binary.family);
    expect(hello.get('version')).to.equal(binary.version);
    if (binary.family === 'valkey') {
      // Valkey 8 reports the Redis release it forked from, for clients that compare versions.
      expect(info).to.match(/^server_name:valkey\r?$/m);
      expect(info).to.match(new RegExp(`^valkey_version:${binary.version.replace(/\./g, '\\.')}\\r?$`, 'm'));
      if (binary.version.startsWith('8.')) expect(redisVersion).to.equal('7.2.4');
    } else {
      expect(info).not.to.match(/^server_name:/m);
      expect(redisVersion).to.equal(binary.version);
    }
  });

  it('the client connects and runs commands without asking which server it is', async () => {
    const loop = new EventLoop();
    try {
      const conn = loop.connect(server.url);
      expect(await loop.sendCommand(conn, 'SET', 'family', binary.family)).to.equal('OK');
      expect(await loop.sendCommand(conn, 'GET', 'family')).to.equal(binary.family);
    } finally {
      await loop.close();
    }
  });

  it('nothing in lib/ keys a feature on the server\'s name or version', () => {
    const hits: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) walk(full);
        else if (e.name.endsWith('.ts')) {
          fs.readFileSync(full, 'utf8').split('\n').forEach((line, i) => {
            if (/redis_version|valkey_version|server_name|['"](redis|valkey)['"]|\bvalkey\b/i.test(line.replace(/\/\/.*$|^\s*\*.*$/, ''))) {
              hits.push(`${path.relative(LIB, full)}:${i + 1}: ${line.trim()}`);
            }
          });
        }
      }
    };
    walk(LIB);
    expect(hits).to.deep.equal([]);
  });
});

describe('server families: a killed cluster master in CLUSTER SHARDS and CLUSTER SLOTS', function () {
  this.timeout(180_000);
  let rc: RedisCluster;
  let loop: EventLoop;
  let victim: ClusterNode;
  let promoted: ClusterNode;
  let victimSlots: string;
  /** A client that knew the cluster before the master died. */
  let early: Cluster;
  const key = 'family:failover';

  before(async () => {
    rc = await startCluster({ masters: 3, replicasPerMaster: 1 });
    loop = new EventLoop();
  });
  after(async () => {
    await loop?.close();
    await rc?.stop();
  });

  it('kill the master of a key: the cluster promotes its replica', async () => {
    early = loop.cluster([rc.seedUrl]);
    expect(await loop.sendCommand(early, 'SET', key, 'before')).to.equal('OK');
    victim = await rc.masterOfKey(key);
    victimSlots = victim.slots.map((r) => r.join('-')).join(',');
    const replica = rc.replicasOf(victim)[0]!;
    // The replica must hold the key before its master dies (replication is asynchronous).
    await until(async () => (await replica.commands([['READONLY'], ['GET', key]]))[1] === 'before', 10_000, 'the replica to have the key');
    promoted = await rc.killMaster(victim);
    expect(promoted).to.equal(replica);
  });

  it('CLUSTER SHARDS lists the failed master as each family does; the client takes the promoted replica as the owner', async () => {
    for (const node of rc.nodes.filter((n) => n.isRunning)) {
      const reply = await node.command('CLUSTER', 'SHARDS');
      const shards = (reply as unknown[]).map(toMap);
      const withVictim = shards.filter((s) => (s.get('nodes') as unknown[]).some((n) => toMap(n).get('id') === victim.id));
      expect(withVictim, `${node.address}: shards that list the killed master`).to.have.length(1);
      const shard = withVictim[0]!;
      const nodes = (shard.get('nodes') as unknown[]).map(toMap);
      const dead = nodes.find((n) => n.get('id') === victim.id)!;
      expect(dead.get('role'), `${node.address}: the killed master's role`).to.equal('master');
      expect(dead.get('health'), `${node.address}: the killed master's health`).to.equal('fail');
      const slots = (shard.get('slots') as unknown[]).map(Number);
      if (serverBinaries().family === 'valkey') {
        // Valkey 8 groups nodes by shard id: the failed master stays in the shard of the replica
        // that took its place, next to it, both role master; the slots are the promoted one's.
        expect(nodes.map((n) => `${String(n.get('id'))} ${String(n.get('role'))} ${String(n.get('health'))}`).sort(), node.address)
          .to.deep.equal([`${promoted.id} master online`, `${victim.id} master fail`].sort());
        expect(slots.join('-'), node.address).to.equal(victimSlots);
      } else {
        // Redis 7.0: a shard per master; the failed one's has no slots left.
        expect(nodes.map((n) => n.get('id')), node.address).to.deep.equal([victim.id]);
        expect(slots, node.address).to.deep.equal([]);
      }
      // The client's parser gives the slots to the promoted replica whatever order the shard
      // lists its nodes in (Valkey's order is the order a node learned of them).
      const via = { host: node.host, port: node.port };
      const parsed = parseClusterShards(reply, false, via);
      const reversed = (reply as unknown[][]).map((s) => {
        const m = toMap(s);
        return ['slots', m.get('slots'), 'nodes', [...(m.get('nodes') as unknown[])].reverse()];
      });
      for (const [order, view] of [['as listed', parsed], ['nodes reversed', parseClusterShards(reversed, false, via)]] as const) {
        const where = `${node.address}, ${order}`;
        const owner = view.find((s) => s.slots.some(([a, b]) => keySlot(key) >= a && keySlot(key) <= b));
        expect(owner?.master.id, `${where}: the owner of ${key}'s slot`).to.equal(promoted.id);
        expect(view.every((s) => s.master.health === 'online'), `${where}: a failed master owns slots`).to.equal(true);
        expect(view.flatMap((s) => s.replicas).some((r) => r.id === victim.id), `${where}: the failed master as a replica`).to.equal(false);
      }
    }
  });

  it('CLUSTER SLOTS leaves the failed master out on both; it and CLUSTER SHARDS give the same owners', async () => {
    for (const node of rc.nodes.filter((n) => n.isRunning)) {
      const via = { host: node.host, port: node.port };
      const [shardsReply, slotsReply] = await node.commands([['CLUSTER', 'SHARDS'], ['CLUSTER', 'SLOTS']]);
      expect(JSON.stringify(slotsReply), node.address).not.to.include(victim.id);
      const fromSlots = parseClusterSlots(slotsReply, via);
      expect(owners(fromSlots), node.address).to.deep.equal(owners(parseClusterShards(shardsReply, false, via)));
      expect(fromSlots.find((s) => s.master.id === promoted.id)?.slots.map((r) => r.join('-')).join(','), node.address).to.equal(victimSlots);
    }
  });

  it('the client routes the key to the promoted replica, seeded from any live node', async () => {
    const clusters: Cluster[] = [];
    for (const node of rc.nodes.filter((n) => n.isRunning)) {
      const cluster = loop.cluster([node.url]);
      clusters.push(cluster);
      await cluster.whenReady();
      const conn = cluster.connectionFor(key);
      expect(`${conn.resolvedOptions.host}:${conn.resolvedOptions.port}`, `seeded from ${node.address}`).to.equal(promoted.address);
      expect(cluster.nodes.some((n) => n.address === victim.address), `seeded from ${node.address}: the failed master in the map`).to.equal(false);
      expect(await loop.sendCommand(cluster, 'GET', key)).to.equal('before');
    }
    for (const c of clusters) c.close();
    // The client that knew the old master moves on to the promoted one.
    const servedBy = () => { const c = early.connectionFor(key); return `${c.resolvedOptions.host}:${c.resolvedOptions.port}`; };
    await until(async () => {
      await loop.sendCommand(early, 'GET', key).catch(() => undefined); // a failure makes it read the map again
      return servedBy() === promoted.address;
    }, 15_000, 'the early client to route the key to the promoted replica');
    expect(await loop.sendCommand(early, 'SET', key, 'after')).to.equal('OK');
    expect(await promoted.command('GET', key)).to.equal('after');
  });
});
