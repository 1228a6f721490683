// Client-side shard sets: keys placed by hash slot as a Redis Cluster with the same masters
// would place them, cross-slot commands split, and a dead shard failing only its own commands.
import { expect } from 'chai';
import {
  ConnectionClosedError, EventLoop, Future, RoutingError, shardSlotRanges, keySlot, type ShardSet,
} from '../lib/index.js';
import { startRedis, startShards, type RedisServer } from '../harness/index.js';
import { startFakeServer } from '../harness/fake-server.js';
import { outcome, within } from './support/helpers.js';

describe('shard sets', function () {
  let servers: RedisServer[];
  let oracle: RedisServer; // cluster-enabled, only for CLUSTER KEYSLOT
  let loop: EventLoop;
  let shards: ShardSet;

  before(async () => {
    [servers, oracle] = await Promise.all([
      startShards(3),
      startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes-oracle.conf'] }),
    ]);
  });
  after(async () => {
    await Promise.all([...servers, oracle].map((s) => s.stop()));
  });
  beforeEach(async () => {
    await Promise.all(servers.map((s) => s.command('FLUSHALL')));
    loop = new EventLoop();
    shards = loop.shards(servers.map((s) => s.url));
  });
  afterEach(async () => {
    await loop.close();
  });

  it('cuts the slots as redis-cli --cluster create assigns them to the same number of masters', () => {
    expect(shardSlotRanges(3)).to.deep.equal([[0, 5460], [5461, 10922], [10923, 16383]]);
    expect(shardSlotRanges(1)).to.deep.equal([[0, 16383]]);
    expect(shardSlotRanges(2)).to.deep.equal([[0, 8191], [8192, 16383]]);
    for (const n of [4, 5, 7, 10, 100]) {
      const r = shardSlotRanges(n);
      expect(r[0]![0]).to.equal(0);
      expect(r[n - 1]![1]).to.equal(16383);
      for (let i = 1; i < n; i++) expect(r[i]![0]).to.equal(r[i - 1]![1] + 1);
    }
    expect(shards.slotRanges).to.deep.equal(shardSlotRanges(3));
  });

  it('hashes every edge case of hash tags exactly as the server (CLUSTER KEYSLOT) does', async () => {
    const keys = [
      'foo', '', '{', '}', '{}', '}{', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', '{user1000}.following',
      '{user1000}.followers', 'foo{bar', 'foo}bar{', 'a{b}c{d}e', '{{}}', '{ }', 'héllo{wörld}', '日本{語}', '🚀{}x', '{a}',
    ];
    for (let i = 0; i < 200; i++) keys.push(`key:${i}`, `{tag${i % 7}}:${i}`, `x{}{y${i}}`);
    const replies = await oracle.commands(keys.map((k) => ['CLUSTER', 'KEYSLOT', k]));
    keys.forEach((k, i) => {
      expect(keySlot(k), `slot of ${JSON.stringify(k)}`).to.equal(replies[i]);
      expect(keySlot(Buffer.from(k)), `slot of Buffer ${JSON.stringify(k)}`).to.equal(replies[i]);
    });
  });

  it('stores each key on the shard that owns its slot, as CLUSTER KEYSLOT and the ranges say', async () => {
    const keys = Array.from({ length: 600 }, (_, i) => `user:${i}`);
    await Future.all(keys.map((k) => loop.sendCommand(shards, 'SET', k, k)));
    const slots = (await oracle.commands(keys.map((k) => ['CLUSTER', 'KEYSLOT', k]))) as number[];
    const ranges = shardSlotRanges(3);
    const perShard = await Promise.all(servers.map((s) => s.command('KEYS', 'user:*') as Promise<string[]>));
    const counts = perShard.map((list) => list.length);
    expect(counts.reduce((a, b) => a + b)).to.equal(keys.length);
    for (const n of counts) expect(n).to.be.greaterThan(100); // spread over every shard
    keys.forEach((k, i) => {
      const shard = ranges.findIndex(([a, b]) => slots[i]! >= a && slots[i]! <= b);
      expect(perShard[shard], k).to.include(k);
      expect(shards.shardOf(k)).to.equal(shard);
      expect(shards.connectionFor(k)).to.equal(shards.connections[shard]);
    });
  });

  it('splits MGET, MSET, DEL, EXISTS, UNLINK and TOUCH over the shards and merges them in order', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    expect(new Set(keys.map((k) => shards.shardOf(k))).size).to.equal(3);
    expect(await loop.sendCommand(shards, 'MSET', ...keys.flatMap((k) => [k, `v-${k}`]))).to.equal('OK');
    expect(await loop.sendCommand(shards, 'MGET', ...keys, 'missing')).to.deep.equal([...keys.map((k) => `v-${k}`), null]);
    expect(await loop.sendCommand(shards, 'EXISTS', ...keys, 'missing', keys[0]!)).to.equal(31);
    expect(await loop.sendCommand(shards, 'TOUCH', ...keys)).to.equal(30);
    expect(await loop.sendCommand(shards, 'DEL', ...keys.slice(0, 10))).to.equal(10);
    expect(await loop.sendCommand(shards, 'UNLINK', ...keys)).to.equal(20);
    expect(await loop.send(shards, ['MGET', 'k1', 'k2'], { returnBuffers: true })).to.deep.equal([null, null]);
    await loop.sendCommand(shards, 'MSET', ...keys.flatMap((k) => [k, '1']));
    expect(await loop.send(shards, ['DEL', ...keys], { bigInt: true })).to.equal(30n); // a split count stays a bigint
  });

  it('loop.close() right after sending, before the command table is known, writes those commands instead of rejecting them', async () => {
    const fresh = new EventLoop();
    const set = fresh.shards(servers.map((s) => s.url));
    const f = fresh.sendCommand(set, 'SET', 'early', 'v');
    await fresh.close();
    expect(await f).to.equal('OK');
    expect((await Promise.all(servers.map((s) => s.command('GET', 'early')))).filter((v) => v === 'v')).to.have.length(1);
  });

  it('keeps hash-tagged multi-key commands whole and refuses other cross-slot ones before writing', async () => {
    await loop.sendCommand(shards, 'SADD', '{u1}:a', 'x', 'y');
    await loop.sendCommand(shards, 'SADD', '{u1}:b', 'y');
    expect(await loop.sendCommand(shards, 'SINTER', '{u1}:a', '{u1}:b')).to.deep.equal(['y']);
    const before = shards.connections.map((c) => c.stats.commandsSent);
    const o = await outcome(loop.sendCommand(shards, 'SINTER', 'a', 'b'));
    expect(o.ok).to.equal(false);
    const err = (o as { error: Error }).error;
    expect(err).to.be.instanceOf(RoutingError);
    expect(err.message).to.match(/different slots.*hash tag/);
    expect(shards.connections.map((c) => c.stats.commandsSent)).to.deep.equal(before);
  });

  it('refuses keyless commands, naming shards.connections and connectionFor', async () => {
    const o = await outcome(loop.sendCommand(shards, 'PING'));
    expect((o as { error: Error }).error).to.be.instanceOf(RoutingError);
    expect((o as { error: Error }).error.message).to.match(/shards\.connections.*connectionFor/);
    expect(await Future.all(shards.connections.map((c) => loop.sendCommand(c, 'PING')))).to.deep.equal(['PONG', 'PONG', 'PONG']);
  });

  it('sends FUNCTION LOAD / FLUSH and SCRIPT LOAD / FLUSH to every shard, so FCALL and EVALSHA work on every key', async () => {
    const lib = "#!lua name=shardlib\nredis.register_function('sl_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)";
    expect(await loop.sendCommand(shards, 'FUNCTION', 'FLUSH')).to.equal('OK');
    expect(await loop.sendCommand(shards, 'FUNCTION', 'LOAD', lib)).to.equal('shardlib');
    const keys = Array.from({ length: 30 }, (_, i) => `fk:${i}`);
    expect(new Set(keys.map((k) => shards.shardOf(k))).size).to.equal(3);
    expect(await Promise.all(keys.map((k) => loop.sendCommand(shards, 'FCALL', 'sl_set', 1, k, 'v')))).to.deep.equal(keys.map(() => 'OK'));
    const sha = await loop.sendCommand(shards, 'SCRIPT', 'LOAD', "return redis.call('GET', KEYS[1])");
    expect(await Promise.all(keys.map((k) => loop.sendCommand(shards, 'EVALSHA', sha, 1, k)))).to.deep.equal(keys.map(() => 'v'));
    expect(await loop.sendCommand(shards, 'SCRIPT', 'FLUSH')).to.equal('OK');
    expect(await loop.sendCommand(shards, 'FUNCTION', 'FLUSH')).to.equal('OK');
    for (const s of servers) {
      expect(await s.command('SCRIPT', 'EXISTS', sha as string)).to.deep.equal([0]);
      expect(await s.command('FUNCTION', 'LIST')).to.deep.equal([]);
    }
  });

  it('routes commands from the server\'s key specs: EVAL numkeys, XREAD STREAMS, OBJECT subcommands, ZUNIONSTORE', async () => {
    const key = 'script:key';
    expect(await loop.sendCommand(shards, 'EVAL', 'return redis.call("SET", KEYS[1], ARGV[1])', 1, key, 'v')).to.equal('OK');
    expect(await servers[shards.shardOf(key)]!.command('GET', key)).to.equal('v');
    expect(await loop.sendCommand(shards, 'OBJECT', 'ENCODING', key)).to.equal('embstr');
    await loop.sendCommand(shards, 'XADD', 'st', '1-1', 'f', 'v');
    expect(await loop.sendCommand(shards, 'XREAD', 'COUNT', 1, 'STREAMS', 'st', '0')).to.deep.equal([['st', [['1-1', ['f', 'v']]]]]);
    const o = await outcome(loop.sendCommand(shards, 'XREAD', 'BLOCK', 10, 'STREAMS', 'st', '0'));
    expect((o as { error: Error }).error).to.be.instanceOf(RoutingError);
    await loop.sendCommand(shards, 'ZADD', '{z}1', 1, 'a');
    expect(await loop.sendCommand(shards, 'ZUNIONSTORE', '{z}out', 1, '{z}1')).to.equal(1);
    expect(await servers[shards.shardOf('{z}')]!.command('ZCARD', '{z}out')).to.equal(1);
  });

  it('sends commands written before the command table is known, in order', async () => {
    const fresh = loop.shards(servers.map((s) => s.url));
    const futures = Array.from({ length: 500 }, (_, i) => loop.sendCommand(fresh, 'RPUSH', 'order', i));
    const lens = await Future.all(futures);
    expect(lens).to.deep.equal(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(await loop.sendCommand(fresh, 'LRANGE', 'order', 0, 2)).to.deep.equal(['0', '1', '2']);
  });

  it('a shard that does not answer COMMAND does not hold up the others: every shard is asked at once', async () => {
    // The first shard takes the connection and the handshake, then never answers COMMAND. Before,
    // only it was asked, and every command of the set waited for that ask to time out (5 s).
    const stalled = await startFakeServer({ onCommand: (cmd) => (cmd[0]!.toUpperCase() === 'COMMAND' ? null : undefined) });
    try {
      const set = loop.shards([`redis://127.0.0.1:${stalled.port}`, servers[1]!.url, servers[2]!.url]);
      const key = Array.from({ length: 100 }, (_, i) => `s${i}`).find((k) => set.shardOf(k) === 2)!;
      expect(await within(loop.sendCommand(set, 'SET', key, 'v'), 4000, 'a command for a live shard')).to.equal('OK');
      await within(set.whenReady(), 1000, 'whenReady');
      expect(stalled.clients[0]!.commands.map((c) => c[0]!.toUpperCase())).to.include('COMMAND'); // asked, never answered
      expect(await servers[2]!.command('GET', key)).to.equal('v');
    } finally {
      loop.disconnect();
      await stalled.close();
    }
  });

  it('fails only the dead shard\'s commands; the others keep flowing', async () => {
    const victim = await startRedis();
    const set = loop.shards([servers[0]!.url, victim.url, servers[2]!.url]);
    const keys = Array.from({ length: 90 }, (_, i) => `d${i}`);
    await Future.all(keys.map((k) => loop.sendCommand(set, 'SET', k, 1)));
    victim.kill('SIGKILL');
    await victim.waitExit();
    const outcomes = await within(Promise.all(keys.map((k) => outcome(loop.send(set, ['INCR', k], { timeout: 3000 })))), 10_000, 'outcomes');
    keys.forEach((k, i) => {
      const o = outcomes[i]!;
      if (set.shardOf(k) === 1) expect(o.ok, k).to.equal(false);
      else expect(o, k).to.deep.equal({ ok: true, value: 2 });
    });
    const failed = outcomes.filter((o) => !o.ok).map((o) => (o as { error: Error }).error);
    expect(failed.length).to.be.greaterThan(0);
    for (const e of failed) expect(e.name).to.be.oneOf(['ConnectionClosedError', 'TimeoutError']);
    void ConnectionClosedError;
    await victim.stop();
  });
});
