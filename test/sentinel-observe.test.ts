// A sentinel target seen from outside: its topology and commands on the tracing channels, the
// connections it hears of, and the client-side cache through it. One real deployment
// (harness/sentinel.ts) for the suite; tests that fail over leave it converged.
import diagnostics from 'node:diagnostics_channel';
import { expect } from 'chai';
import { CHANNELS, EventLoop, type CommandMessage, type Sentinel, type TopologyMessage } from '../lib/index.js';
import { startSentinels, type SentinelDeployment } from '../harness/index.js';

const PW = 'data-pw';
const SPW = 's3cret';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('sentinel target: tracing, own connections, cache', function () {
  this.timeout(90_000);
  let dep: SentinelDeployment;
  let loop: EventLoop;

  before(async () => {
    dep = await startSentinels({ password: PW, sentinelPassword: SPW });
  });
  after(async () => {
    await dep?.stop();
  });
  beforeEach(async () => {
    loop = new EventLoop();
    await dep.master.command('FLUSHALL');
  });
  afterEach(async () => {
    await loop.close();
  });

  function open(extra: object = {}): Sentinel {
    return loop.sentinel({ sentinels: dep.sentinelUrls, name: dep.name, sentinelPassword: SPW }, { password: PW, ...extra });
  }

  async function followMaster(db: Sentinel): Promise<void> {
    for (let i = 0; i < 100 && db.master?.port !== dep.master.port; i++) await sleep(100);
    expect(db.master).to.deep.equal({ host: dep.master.host, port: dep.master.port });
  }

  it('publishes discovery and failover on redloop:topology, and commands carry kind sentinel and the master written to', async () => {
    const topology: TopologyMessage[] = [];
    const onTopology = (m: unknown) => topology.push(m as TopologyMessage);
    const ended: CommandMessage[] = [];
    const onEnd = (m: unknown) => ended.push(m as CommandMessage);
    diagnostics.subscribe(CHANNELS.topology, onTopology);
    diagnostics.subscribe(`tracing:${CHANNELS.command}:asyncEnd`, onEnd);
    try {
      const db = open();
      await db.whenReady();
      const first = dep.master;
      const firstKey = `${first.host}:${first.port}`;
      expect(topology[0]).to.deep.include({ target: 'sentinel', change: 'discovery', from: undefined, to: firstKey });
      expect(topology[0]!.shards[0]).to.deep.include({ master: firstKey, slots: [[0, 16383]] });

      await loop.sendCommand(db, 'SET', 'traced', 'v');
      const set = ended.find((c) => c.command === 'SET')!;
      expect(set).to.include({ target: 'sentinel', written: true, serverAddress: first.host, serverPort: first.port });

      const promoted = await dep.failover();
      await followMaster(db);
      const toKey = `${promoted.host}:${promoted.port}`;
      const failover = topology.find((m) => m.change === 'failover');
      expect(failover).to.deep.include({ target: 'sentinel', from: firstKey, to: toKey });
      expect(failover!.shards[0]!.master).to.equal(toKey);

      await loop.sendCommand(db, 'GET', 'traced');
      const get = ended.find((c) => c.command === 'GET')!;
      expect(get).to.include({ target: 'sentinel', written: true, serverPort: promoted.port });
    } finally {
      diagnostics.unsubscribe(CHANNELS.topology, onTopology);
      diagnostics.unsubscribe(`tracing:${CHANNELS.command}:asyncEnd`, onEnd);
    }
  });

  it("hears only of its own connections: no loop-wide 'ready' / 'close' / 'end' listener, and it still follows its master", async () => {
    const events = ['ready', 'close', 'end'] as const;
    const before = events.map((e) => loop.listenerCount(e));
    const db = open();
    await db.whenReady();
    await loop.sendCommand(db, 'SET', 'own', '1');
    expect(events.map((e) => loop.listenerCount(e))).to.deep.equal(before);
    // Its master connection lost: heard through its own observer, rediscovered, commands go on.
    const discoveries = db.stats.discoveries;
    await dep.master.command('CLIENT', 'KILL', 'TYPE', 'normal');
    for (let i = 0; i < 50 && db.stats.discoveries === discoveries; i++) await sleep(100);
    expect(db.stats.discoveries).to.be.greaterThan(discoveries);
    expect(await loop.sendCommand(db, 'INCR', 'own')).to.equal(2);
    // The loop still has no listener of its: a loop-wide 'close' of another connection reaches no target.
    expect(events.map((e) => loop.listenerCount(e))).to.deep.equal(before);
  });

  it('caches reads through the target in the current master\'s cache (cache: true and cache.auto), invalidated by other writers; a failover drops the old master\'s entries', async () => {
    const db = open({ cache: {} });
    const auto = open({ cache: { auto: true } });
    await Promise.all([db.whenReady(), auto.whenReady()]);
    await dep.master.command('SET', 'ck', 'v1');
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('v1');
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('v1');
    expect(db.cache!.stats).to.include({ hits: 1, misses: 1, entries: 1 });
    // auto: every cacheable read, without asking.
    expect(await loop.sendCommand(auto, 'GET', 'ck')).to.equal('v1');
    const hitsBefore = auto.cache!.stats.hits;
    expect(await loop.sendCommand(auto, 'GET', 'ck')).to.equal('v1');
    expect(auto.cache!.stats.hits).to.equal(hitsBefore + 1);
    // Another client writes: the server's invalidation drops the entry.
    await dep.master.command('SET', 'ck', 'v2');
    for (let i = 0; i < 50 && db.cache!.stats.entries !== 0; i++) await sleep(20);
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('v2');
    // A write through the target drops its key before it goes.
    await loop.sendCommand(db, 'SET', 'ck', 'v3');
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('v3');
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('v3');
    const before = db.cache!.stats.hits;
    expect(before).to.be.greaterThan(1);

    // Failover: the new master is written behind our back; the old master's entry must not answer.
    const promoted = await dep.failover();
    await followMaster(db);
    await followMaster(auto);
    await dep.master.command('SET', 'ck', 'after-failover');
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('after-failover');
    expect(await loop.sendCommand(auto, 'GET', 'ck')).to.equal('after-failover');
    // And the new master's cache serves (and is invalidated) as the old one did.
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('after-failover');
    expect(db.cache!.stats).to.include({ entries: 1 });
    expect(db.cache!.stats.hits).to.be.greaterThan(0);
    await promoted.command('SET', 'ck', 'later');
    for (let i = 0; i < 50 && db.cache!.stats.entries !== 0; i++) await sleep(20);
    expect(await loop.send(db, ['GET', 'ck'], { cache: true })).to.equal('later');
    db.cache!.clear();
    expect(db.cache!.stats.entries).to.equal(0);
    // The loop's default cache applies to the target (and not to the sentinels' own connections).
    const withDefaults = new EventLoop({ cache: {} });
    try {
      const d2 = withDefaults.sentinel({ sentinels: dep.sentinelUrls, name: dep.name, sentinelPassword: SPW }, { password: PW });
      expect(await withDefaults.send(d2, ['GET', 'ck'], { cache: true })).to.equal('later');
      expect(await withDefaults.send(d2, ['GET', 'ck'], { cache: true })).to.equal('later');
      expect(d2.cache!.stats).to.include({ hits: 1, misses: 1 });
    } finally {
      await withDefaults.close();
    }
    // A target without a cache still refuses { cache: true }, saying so.
    const plain = open();
    await expectReject(loop.send(plain, ['GET', 'ck'], { cache: true }), /has no cache/);
  });
});

async function expectReject(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as Error).message).to.match(re);
    return;
  }
  expect.fail('expected a rejection');
}
