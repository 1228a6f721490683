// A cluster whose nodes are older than Redis 7 has no CLUSTER SHARDS: the client reads the slot
// map from CLUSTER SLOTS instead (lib/routing/cluster/refresh.ts). No real server of the harness
// is that old, so a fake one plays the seed: it refuses CLUSTER SHARDS as Redis 6 does, answers
// CLUSTER SLOTS with a map whose masters are two real standalone servers, and COMMAND with the
// pre-7 entries (first key, last key, step; no key specs). Commands must then go where that map
// says, which the test checks on each real server with the harness's raw client.
import { expect } from 'chai';
import calculateSlot from 'cluster-key-slot';
import { EventLoop } from '../lib/index.js';
import { startShards, rawCommand, type RedisServer } from '../harness/index.js';
import { startFakeServer, resp, type FakeServer } from '../harness/fake-server.js';
import { within } from './support/helpers.js';

type Reply = string | number | null | Reply[];

/** RESP2 for a nested reply: strings as bulk strings, numbers as integers. */
function encode(v: Reply): string {
  if (v === null) return resp.bulk(null);
  if (typeof v === 'number') return resp.int(v);
  if (typeof v === 'string') return resp.bulk(v);
  return `*${v.length}\r\n${v.map(encode).join('')}`;
}

/** COMMAND as Redis 6 answers it: name, arity, flags, first key, last key, step. */
const OLD_COMMAND_TABLE: Reply = [
  ['get', 2, ['readonly', 'fast'], 1, 1, 1],
  ['set', -3, ['write', 'denyoom'], 1, 1, 1],
  ['del', -2, ['write'], 1, -1, 1],
  ['ping', -1, ['stale', 'fast'], 0, 0, 0],
];

/** The split point of the fake map: slots below it on the first server, the rest on the second. */
const SPLIT = 8192;

describe('cluster: the CLUSTER SLOTS fallback for servers without CLUSTER SHARDS', function () {
  let servers: RedisServer[] = [];
  let fake: FakeServer;
  let loop: EventLoop | undefined;

  before(async () => {
    servers = await startShards(2);
    const [a, b] = servers as [RedisServer, RedisServer];
    fake = await startFakeServer({
      onCommand: (command) => {
        const name = command.map((s) => s.toUpperCase()).slice(0, 2).join(' ');
        if (name === 'CLUSTER SHARDS') return resp.error("ERR unknown subcommand 'shards'. Try CLUSTER HELP.");
        if (name === 'CLUSTER SLOTS') {
          return encode([
            [0, SPLIT - 1, ['127.0.0.1', a.port, 'a'.repeat(40)]],
            [SPLIT, 16383, ['127.0.0.1', b.port, 'b'.repeat(40)]],
          ]);
        }
        if (command[0]!.toUpperCase() === 'COMMAND' && command.length === 1) return encode(OLD_COMMAND_TABLE);
        return undefined;
      },
    });
  });
  afterEach(async () => {
    await loop?.close();
    loop = undefined;
  });
  after(async () => {
    await fake?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('reads the map from CLUSTER SLOTS and routes every key to the master of its slot', async () => {
    const [a, b] = servers as [RedisServer, RedisServer];
    loop = new EventLoop();
    const cluster = loop.cluster([fake.url]);
    // Bounded so that a client that cannot read this map fails here, with a message, not at mocha's timeout.
    await within(cluster.whenReady(), 10_000, 'the slot map read from CLUSTER SLOTS');

    const asked = fake.clients.flatMap((c) => c.commands).map((c) => c.slice(0, 2).join(' ').toUpperCase());
    expect(asked).to.include('CLUSTER SHARDS');
    expect(asked).to.include('CLUSTER SLOTS');
    const masters = cluster.nodes.filter((n) => n.role === 'master');
    expect(masters.map((n) => n.address).sort()).to.deep.equal([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort());
    expect(masters.find((n) => n.address.endsWith(`:${a.port}`))!.slots).to.deep.equal([[0, SPLIT - 1]]);

    const keys = Array.from({ length: 64 }, (_, i) => `fallback:${i}`);
    const low = keys.filter((k) => calculateSlot(k) < SPLIT);
    const high = keys.filter((k) => calculateSlot(k) >= SPLIT);
    expect(low).to.not.be.empty;
    expect(high).to.not.be.empty;
    await Promise.all(keys.map((k) => loop!.sendCommand(cluster, 'SET', k, `v:${k}`)));

    // Each key is on the server the map names for its slot, and only there.
    for (const k of low) {
      expect(await rawCommand(a.endpoint, 'GET', k), k).to.equal(`v:${k}`);
      expect(await rawCommand(b.endpoint, 'EXISTS', k), k).to.equal(0);
    }
    for (const k of high) {
      expect(await rawCommand(b.endpoint, 'GET', k), k).to.equal(`v:${k}`);
      expect(await rawCommand(a.endpoint, 'EXISTS', k), k).to.equal(0);
    }
    expect(await rawCommand(a.endpoint, 'DBSIZE')).to.equal(low.length);
    expect(await rawCommand(b.endpoint, 'DBSIZE')).to.equal(high.length);
    // And reads come back from the same servers.
    expect(await Promise.all(keys.map((k) => loop!.sendCommand(cluster, 'GET', k)))).to.deep.equal(keys.map((k) => `v:${k}`));
    // The fake seed holds no data: nothing but the handshake and the map went there.
    const dataSentToFake = fake.clients.flatMap((c) => c.commands).filter((c) => ['SET', 'GET'].includes(c[0]!.toUpperCase()));
    expect(dataSentToFake).to.deep.equal([]);
  });
});
