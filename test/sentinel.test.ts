// loop.sentinel() against a real deployment (harness/sentinel.ts): 1 master, 2 replicas, 3
// sentinels with passwords on both sides. One deployment for the whole suite; tests that fail
// over or kill nodes leave it converged for the next one.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  ConfigError, ConnectionClosedError, EventLoop, Future, RoutingError, type Sentinel,
} from '../lib/index.js';
import { startLoneSentinel, startRedis, startSentinels, type RedisServer, type SentinelDeployment } from '../harness/index.js';

const PW = 'data-pw';
const SPW = 's3cret';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Writers that INCR counters through `db` until stopped, recording every outcome per counter. */
class Writers {
  readonly acked: number[];
  readonly rejectedWritten: number[];
  failed = 0;
  unwrittenFailed = 0;
  readonly errors: Error[] = [];
  /** Date.now() at which every future settled, for those sent before `mark`. */
  lastSettleBeforeMark = 0;
  mark = Infinity;
  private stopped = false;
  private readonly done: Promise<void>[] = [];

  constructor(private readonly loop: EventLoop, private readonly db: Sentinel, readonly counters: number, writers = 4, readonly window = 200) {
    this.acked = new Array<number>(counters).fill(0);
    this.rejectedWritten = new Array<number>(counters).fill(0);
    for (let w = 0; w < writers; w++) this.done.push(this.run(w));
  }

  get total(): number {
    return this.acked.reduce((a, b) => a + b, 0);
  }

  private async run(w: number): Promise<void> {
    let i = w * 7919;
    while (!this.stopped) {
      const batch: Array<[number, Future<number>, number]> = [];
      for (let j = 0; j < this.window; j++) {
        const c = i++ % this.counters;
        batch.push([c, this.loop.sendCommand<number>(this.db, 'INCR', `counter:{c}:${c}`), Date.now()]);
      }
      for (const [c, f, sentAt] of batch) {
        try {
          await f;
          this.acked[c]!++;
        } catch (err) {
          this.failed++;
          if (this.errors.length < 20) this.errors.push(err as Error);
          if (err instanceof ConnectionClosedError && err.written) this.rejectedWritten[c]!++;
          else this.unwrittenFailed++;
        }
        if (sentAt < this.mark) this.lastSettleBeforeMark = Math.max(this.lastSettleBeforeMark, Date.now());
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.done);
  }
}

async function counterValues(dep: SentinelDeployment, n: number): Promise<number[]> {
  const keys = Array.from({ length: n }, (_, c) => `counter:{c}:${c}`);
  const out: number[] = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const reply = await dep.master.command('MGET', ...keys.slice(i, i + 1000)) as Array<string | null>;
    for (const v of reply) out.push(v === null ? 0 : Number(v));
  }
  return out;
}

describe('sentinel target (loop.sentinel)', function () {
  this.timeout(180_000);
  let dep: SentinelDeployment;
  let loop: EventLoop;
  let writers: Writers | undefined;

  before(async () => {
    dep = await startSentinels({ password: PW, sentinelPassword: SPW });
  });

  after(async () => {
    await dep?.stop();
  });

  beforeEach(() => {
    loop = new EventLoop();
    loop.on('error', () => {}); // sentinels and nodes going down on purpose
  });

  afterEach(async () => {
    await writers?.stop();
    writers = undefined;
    loop.disconnect();
    for (const n of dep.nodes) if (n.isRunning) n.kill('SIGCONT'); // a failed SIGSTOP test
    await dep.waitForConvergence(undefined, undefined, false);
    await dep.master.command('FLUSHALL');
  });

  function open(extra: Record<string, unknown> = {}, only?: number): Sentinel {
    return loop.sentinel({ sentinels: only !== undefined ? [dep.sentinelUrls[only]!] : dep.sentinelUrls, name: dep.name, sentinelPassword: SPW }, { password: PW, ...extra });
  }

  it('discovers the master from one sentinel address, learns the others and the replicas; commands sent at once wait', async () => {
    const topo: unknown[] = [];
    loop.on('topology', (t) => topo.push(t));
    const db = loop.sentinel({ sentinels: [{ host: dep.sentinels[1]!.host, port: dep.sentinels[1]!.port }], name: dep.name, sentinelPassword: SPW }, { password: PW });
    const early = loop.sendCommand(db, 'SET', 'early', 'v');
    expect(db.master).to.equal(undefined);
    await db.whenReady();
    expect(await early).to.equal('OK');
    expect(db.master).to.deep.equal({ host: dep.master.host, port: dep.master.port });
    expect(db.replicas.map((r) => r.port).sort()).to.deep.equal(dep.replicas.map((r) => r.port).sort());
    expect(db.sentinels).to.have.length(3);
    expect(topo[0]).to.equal(db);
    expect(await dep.master.command('GET', 'early')).to.equal('v');
  });

  it('is accepted wherever a connection is: send, drain, Future.all, batch, multi, script, transaction, withConnection', async () => {
    const db = open();
    expect(await loop.send(db, ['SET', 'a', '1'])).to.equal('OK');
    expect((await loop.send(db, ['GET', 'a'], { returnBuffers: true }) as Buffer).toString()).to.equal('1');
    await loop.drain(db);
    expect(await Future.all([loop.sendCommand(db, 'INCR', 'a'), loop.sendCommand(db, 'INCR', 'a')])).to.deep.equal([2, 3]);
    const outcomes = await loop.batch(db, [['SET', 'b', 'x'], ['INCR', 'b'], ['GET', 'b']]);
    expect(outcomes.map((o) => o.ok)).to.deep.equal([true, false, true]);
    expect(await loop.multi(db, [['SET', 'm', '1'], ['INCR', 'm'], ['GET', 'm']])).to.deep.equal(['OK', 2, '2']);
    const script = loop.script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    expect(await script.run(db, ['s'], [5])).to.equal(5);
    expect(await script.run(db, ['s'], [5])).to.equal(10);
    const result = await loop.transaction(db, 'w', async (tx) => {
      await tx.send(['WATCH', 'w']);
      const v = Number(await tx.send(['GET', 'w']) ?? 0);
      return tx.exec([['SET', 'w', String(v + 1)]]);
    });
    expect(result).to.deep.equal(['OK']);
    const popped = await loop.withConnection(db, null, async (conn) => {
      await loop.sendCommand(db, 'RPUSH', 'q', 'item');
      return loop.sendCommand(conn, 'BLPOP', 'q', 1);
    });
    expect(popped).to.deep.equal(['q', 'item']);
  });

  it('is accepted by subscribe, scan, hscan and massInsert', async () => {
    const db = open();
    const sub = loop.subscribe(db, ['news']);
    await sub.ready;
    const got = new Promise<string>((resolve) => sub.on('message', (_ch: unknown, msg: unknown) => resolve(String(msg))));
    await loop.sendCommand(db, 'PUBLISH', 'news', 'hello');
    expect(await got).to.equal('hello');
    await sub.close();

    const report = await loop.massInsert(db, Readable.from(Array.from({ length: 2000 }, (_, i) => ['SET', `mi:${i}`, String(i)])));
    expect(report.errors.count).to.equal(0);
    const keys: string[] = [];
    for await (const k of loop.scan(db, { match: 'mi:*', count: 500 })) keys.push(String(k));
    expect(keys).to.have.length(2000);
    await loop.sendCommand(db, 'HSET', 'h', 'f1', 'v1', 'f2', 'v2');
    const fields: string[] = [];
    for await (const [f] of loop.hscan(db, 'h')) fields.push(String(f));
    expect(fields.sort()).to.deep.equal(['f1', 'f2']);
  });

  it('SENTINEL FAILOVER while writers INCR thousands of counters: no command fails, every counter is exact, a SCAN across it sees every key', async () => {
    const db = open();
    await db.whenReady();
    const old = db.master;
    // A SCAN started before the failover and finished after it sees every key (restarted on the new master).
    await Future.all(Array.from({ length: 2000 }, (_, i) => loop.sendCommand(db, 'SET', `scan:${i}`, '1')));
    const scanned = new Set<string>();
    const it = loop.scan(db, { match: 'scan:*', count: 50 })[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).to.equal(false);
    scanned.add(String(first.value));
    writers = new Writers(loop, db, 5000);
    await sleep(500);
    const before = writers.total;
    await dep.failover();
    await sleep(500);
    for (let r = await it.next(); r.done !== true; r = await it.next()) scanned.add(String(r.value));
    expect(scanned.size).to.equal(2000);
    await writers.stop();
    expect(writers.total).to.be.greaterThan(before);
    expect(writers.errors.map((e) => e.message)).to.deep.equal([]);
    expect(writers.failed).to.equal(0);
    expect(db.master).to.deep.equal({ host: dep.master.host, port: dep.master.port });
    expect(db.master).to.not.deep.equal(old);
    expect(await counterValues(dep, 5000)).to.deep.equal(writers.acked);
    writers = undefined;
    expect(db.stats.failovers).to.equal(1);
  });

  it("readFrom 'replica' reads from the replicas, and from the new ones after a failover", async () => {
    await dep.waitForConvergence(); // the previous test's old master is a replica again
    const db = open({ readFrom: 'replica' });
    await db.whenReady();
    await loop.sendCommand(db, 'SET', 'r', 'v');
    await sleep(200); // replication
    const readsOn = async (): Promise<Map<number, number>> => {
      const out = new Map<number, number>();
      for (const n of dep.nodes.filter((x) => x.isRunning)) {
        const info = String(await n.command('INFO', 'commandstats'));
        out.set(n.port, Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0));
      }
      return out;
    };
    const check = async (): Promise<void> => {
      // Wait (bounded) for the replica connections, then read.
      for (let i = 0; i < 100 && db.replicas.filter((r) => r.ready).length < 2; i++) {
        if (i % 10 === 9) db.refresh();
        await sleep(100);
      }
      expect(db.replicas.filter((r) => r.ready)).to.have.length(2);
      const start = await readsOn();
      const values = await Future.all(Array.from({ length: 100 }, () => loop.sendCommand(db, 'GET', 'r')));
      expect(new Set(values)).to.deep.equal(new Set(['v']));
      const end = await readsOn();
      const master = db.master!.port;
      expect(end.get(master)! - start.get(master)!, 'GETs on the master').to.equal(0);
      for (const r of db.replicas) expect(end.get(r.port)! - start.get(r.port)!, `GETs on replica ${r.port}`).to.be.greaterThan(0);
    };
    await check();
    await dep.failover(true); // converged: the old master is a replica again
    for (let i = 0; i < 100 && (db.master?.port !== dep.master.port || db.replicas.length < 2); i++) {
      db.refresh();
      await sleep(200);
    }
    expect(db.master?.port).to.equal(dep.master.port);
    expect(db.replicas.map((r) => r.port).sort()).to.deep.equal(dep.replicas.map((r) => r.port).sort());
    await loop.sendCommand(db, 'SET', 'r', 'v');
    await sleep(200);
    await check();
  });

  it('SIGKILL of the master during writes: every future settles soon after the promotion, later commands succeed, counters are bounded, a subscription moves', async () => {
    const db = open({ failoverTimeout: 15_000 });
    await db.whenReady();
    const sub = loop.subscribe(db, ['after-kill']);
    await sub.ready;
    const log = dep.watch();
    try {
      writers = new Writers(loop, db, 2000);
      await sleep(500);
      const old = dep.master;
      const killedAt = Date.now();
      const promoted = await dep.killMaster();
      const promotedAt = Math.min(...log.events.filter((e) => (e.channel === '+switch-master' || e.channel === '+promoted-slave') && e.at >= killedAt).map((e) => e.at));
      writers.mark = promotedAt;
      await sleep(1500);
      const w = writers;
      await w.stop();
      writers = undefined;
      expect(w.unwrittenFailed, w.errors.map((e) => e.message).join('\n')).to.equal(0);
      expect(w.lastSettleBeforeMark - promotedAt, 'settled after the promotion (ms)').to.be.at.most(1000);
      expect(promoted).to.not.equal(old);
      // Under load a failover can time out and be followed by another: compare with where the
      // sentinels settle, which the target must reach by itself (bounded).
      await dep.waitForConvergence(old, undefined, false);
      for (let i = 0; i < 50 && db.master?.port !== dep.master.port; i++) await sleep(200);
      expect(db.master).to.deep.equal({ host: dep.master.host, port: dep.master.port });
      expect(await loop.sendCommand(db, 'SET', 'after', 'kill')).to.equal('OK');
      // The subscription moved to the new master by itself: a message published there arrives.
      const got = new Promise<string>((resolve) => sub.on('message', (_ch: unknown, msg: unknown) => resolve(String(msg))));
      let delivered = false;
      void got.then(() => { delivered = true; });
      for (let i = 0; i < 100 && !delivered; i++) {
        await loop.sendCommand(db, 'PUBLISH', 'after-kill', 'moved');
        await sleep(100);
      }
      expect(await got).to.equal('moved');
      await sub.close();
      const values = await counterValues(dep, 2000);
      for (let c = 0; c < 2000; c++) {
        expect(values[c], `counter ${c}`).to.be.within(w.acked[c]!, w.acked[c]! + w.rejectedWritten[c]!);
      }
    } finally {
      log.stop();
      const dead = dep.nodes.find((n) => !n.isRunning);
      if (dead !== undefined) await dep.restart(dead);
    }
  });

  it('SIGSTOP of the master: it comes back as a replica, and no write is acknowledged by it after the promotion', async () => {
    const db = open({ failoverTimeout: 15_000 });
    await db.whenReady();
    writers = new Writers(loop, db, 2000);
    await sleep(500);
    const old = dep.master;
    const promoted = await dep.killMaster('SIGSTOP');
    await sleep(500);
    old.kill('SIGCONT');
    await sleep(1500);
    const w = writers;
    await w.stop();
    writers = undefined;
    expect(w.unwrittenFailed, w.errors.map((e) => e.message).join('\n')).to.equal(0);
    expect(promoted).to.not.equal(old);
    await dep.waitForConvergence();
    for (let i = 0; i < 50 && db.master?.port !== dep.master.port; i++) await sleep(200);
    expect(db.master).to.deep.equal({ host: dep.master.host, port: dep.master.port });
    expect((await old.command('ROLE') as unknown[])[0]).to.equal('slave');
    const values = await counterValues(dep, 2000);
    for (let c = 0; c < 2000; c++) {
      expect(values[c], `counter ${c}`).to.be.within(w.acked[c]!, w.acked[c]! + w.rejectedWritten[c]!);
    }
  });

  it('every sentinel killed, then restarted, while commands flow: the known master keeps serving, errors say why, it recovers by itself', async () => {
    const db = open();
    await db.whenReady();
    const errors: Error[] = [];
    loop.on('error', (err, from) => { if ((from as unknown) === db) errors.push(err); });
    writers = new Writers(loop, db, 1000, 2, 100);
    for (const s of dep.sentinels) s.kill('SIGKILL');
    await Promise.all(dep.sentinels.map((s) => s.waitExit()));
    const during = writers.total;
    await sleep(2000); // no refresh() asked: losing the sentinels starts the retries and their 'error' events
    expect(writers.total).to.be.greaterThan(during);
    expect(writers.failed).to.equal(0);
    expect(errors.length).to.be.greaterThan(0);
    expect(errors[0]!.message).to.contain(`'${dep.name}'`).and.to.contain(String(dep.sentinels[0]!.port));
    await Promise.all(dep.sentinels.map((s) => s.restart()));
    await dep.waitForConvergence();
    const errorsBefore = errors.length;
    for (let i = 0; i < 100; i++) {
      db.refresh();
      await sleep(100);
      if (db.stats.discoveries > 0 && errors.length === errorsBefore) break;
    }
    const discoveries = db.stats.discoveries;
    db.refresh();
    for (let i = 0; i < 50 && db.stats.discoveries === discoveries; i++) await sleep(100);
    expect(db.stats.discoveries).to.be.greaterThan(discoveries);
    await writers.stop();
    expect(writers.failed).to.equal(0);
    writers = undefined;
  });

  it('bad input: no sentinels and bad options throw; an unknown master name and a wrong sentinel password reject, naming the master and the sentinels tried', async () => {
    expect(() => loop.sentinel({ sentinels: [], name: 'x' })).to.throw(ConfigError, /at least one sentinel/);
    expect(() => loop.sentinel({ sentinels: dep.sentinelUrls, name: '' })).to.throw(ConfigError, /name/);
    expect(() => loop.sentinel({ sentinels: dep.sentinelUrls, name: 'x' }, { host: 'h' })).to.throw(ConfigError, /host/);
    expect(() => loop.sentinel({ sentinels: dep.sentinelUrls, name: 'x' }, { readFrom: 'any' as never })).to.throw(ConfigError, /readFrom/);

    const unknown = loop.sentinel({ sentinels: dep.sentinelUrls, name: 'nosuchmaster', sentinelPassword: SPW }, { password: PW });
    const f = loop.sendCommand(unknown, 'GET', 'k');
    const err = await unknown.whenReady().then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(RoutingError);
    expect(err!.message).to.contain("'nosuchmaster'").and.to.contain(`${dep.sentinels[0]!.port}`).and.to.match(/does not monitor/);
    const ferr = await f.then(() => undefined, (e: Error) => e);
    expect(ferr).to.be.instanceOf(ConnectionClosedError);
    expect((ferr as ConnectionClosedError).written).to.equal(false);

    const wrong = loop.sentinel({ sentinels: [dep.sentinelUrls[0]!.replace(SPW, 'nope')], name: dep.name, sentinelPassword: 'nope' }, { password: PW });
    const werr = await wrong.whenReady().then(() => undefined, (e: Error) => e);
    expect(werr).to.be.instanceOf(RoutingError);
    expect(werr!.message).to.contain(`'${dep.name}'`).and.to.contain(`${dep.sentinels[0]!.port}`).and.to.match(/auth|WRONGPASS|password/i);
  });

  it('a sentinel pointed at the wrong node (a replica): its answer fails the ROLE check and the next sentinel is asked', async () => {
    const started: RedisServer[] = [];
    try {
      const other = await startRedis({ args: ['--requirepass', PW, '--masterauth', PW] });
      started.push(other);
      const replica = await startRedis({ args: ['--requirepass', PW, '--masterauth', PW, '--replicaof', other.host, String(other.port)] });
      started.push(replica);
      const liar = await startLoneSentinel({ name: dep.name, node: replica, password: PW, sentinelPassword: SPW });
      started.push(liar);
      const liarUrl = `redis://:${SPW}@${liar.host}:${liar.port}`;
      const db = loop.sentinel({ sentinels: [liarUrl, dep.sentinelUrls[0]!], name: dep.name, sentinelPassword: SPW }, { password: PW });
      expect(await loop.sendCommand(db, 'SET', 'wrong-node', 'no')).to.equal('OK');
      expect(db.master).to.deep.equal({ host: dep.master.host, port: dep.master.port });
      expect(await dep.master.command('GET', 'wrong-node')).to.equal('no');

      // Only the liar: nothing is ever sent to the replica; commands and whenReady() fail within failoverTimeout, saying why.
      const alone = loop.sentinel({ sentinels: [liarUrl], name: dep.name, sentinelPassword: SPW }, { password: PW, failoverTimeout: 1500 });
      const f = loop.sendCommand(alone, 'SET', 'wrong-node', 'yes');
      const err = await f.then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(ConnectionClosedError);
      expect(err!.message).to.contain(`${replica.port}`).and.to.match(/ROLE slave/);
      const rerr = await alone.whenReady().then(() => undefined, (e: Error) => e);
      expect(rerr).to.be.instanceOf(RoutingError);
      expect(rerr!.message).to.contain(`${liar.port}`);
      expect(await replica.command('GET', 'wrong-node')).to.equal(null);
    } finally {
      await Promise.all(started.map((s) => s.stop()));
    }
  });

  it('a sentinel over TLS (sentinelTls), the data nodes in clear', async () => {
    const tlsSentinel = await startLoneSentinel({ name: 'tlsmaster', node: dep.master, password: PW, sentinelPassword: SPW, tls: true });
    try {
      const db = loop.sentinel({ sentinels: [{ host: tlsSentinel.host, port: tlsSentinel.port }], name: 'tlsmaster', sentinelPassword: SPW, sentinelTls: { ca: tlsSentinel.ca } }, { password: PW });
      expect(await loop.sendCommand(db, 'SET', 'via-tls-sentinel', '1')).to.equal('OK');
      expect(db.master).to.deep.equal({ host: dep.master.host, port: dep.master.port });
      const plain = loop.sentinel({ sentinels: [{ host: tlsSentinel.host, port: tlsSentinel.port }], name: 'tlsmaster', sentinelPassword: SPW, sentinelTimeout: 500 }, { password: PW, failoverTimeout: 1500 });
      const err = await plain.whenReady().then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(RoutingError);
      expect(err!.message).to.contain(`${tlsSentinel.port}`);
    } finally {
      await tlsSentinel.stop();
    }
  });

  it('natMap maps the addresses the sentinels announce (master, replicas, sentinels)', async () => {
    const seen: string[] = [];
    const db = open({ natMap: (a: { host: string; port: number }) => { seen.push(`${a.host}:${a.port}`); return { host: 'localhost', port: a.port }; } });
    expect(await loop.sendCommand(db, 'PING')).to.equal('PONG');
    expect(db.master).to.deep.equal({ host: 'localhost', port: dep.master.port });
    expect(db.replicas.every((r) => r.host === 'localhost')).to.equal(true);
    expect(seen).to.include(`${dep.master.host}:${dep.master.port}`);
    const table = open({ natMap: { [`${dep.master.host}:${dep.master.port}`]: { host: 'localhost', port: dep.master.port } } });
    await table.whenReady();
    expect(table.master).to.deep.equal({ host: 'localhost', port: dep.master.port });
  });

  it('a program that forgets loop.close() still exits when its work is done', async () => {
    const lib = pathToFileURL(fileURLToPath(new URL('../lib/index.js', import.meta.url))).href;
    const body = `import { EventLoop } from ${JSON.stringify(lib)};
      const loop = new EventLoop();
      const db = loop.sentinel({ sentinels: ${JSON.stringify(dep.sentinelUrls)}, name: ${JSON.stringify(dep.name)} }, { password: ${JSON.stringify(PW)} });
      console.log(await loop.sendCommand(db, 'PING'));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', body], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    let killed = false;
    const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(timer);
    expect(killed, 'the process was still running after 20 s').to.equal(false);
    expect(code).to.equal(0);
    expect(out.trim()).to.equal('PONG');
  });

  it('sentinel auth: the sentinels\' password apart from the data nodes\'; a wrong data password is said', async () => {
    const db = loop.sentinel({ sentinels: [dep.sentinelAddresses[0]!], name: dep.name, sentinelPassword: SPW }, { password: PW });
    expect(await loop.sendCommand(db, 'PING')).to.equal('PONG');
    const bad = loop.sentinel({ sentinels: [dep.sentinelAddresses[0]!], name: dep.name, sentinelPassword: SPW }, { password: 'wrong' });
    const err = await bad.whenReady().then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(RoutingError);
    expect(err!.message).to.match(/credentials/);
  });
});
