// Atomic blocks (loop.multi) and explicit batches (loop.batch, Future.allSettled) on a real
// server and a client-side shard set.
import { expect } from 'chai';
import {
  EventLoop, ExecAbortError, Future, ReplyError, RoutingError, type Connection, type ShardSet,
} from '../lib/index.js';
import { startShards, type RedisServer } from '../harness/index.js';
import { errorOf, outcome } from './support/helpers.js';
import { serverAndLoopPerTest } from './support/fixtures.js';

describe('multi, batch and scripts on one server', function () {
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  serverAndLoopPerTest((f) => ({ server, loop, conn } = f));

  it('keeps 1000 blocks contiguous while 10 other producers hammer the same connection', async () => {
    // Everyone appends to one list: an interleaved block would show up as a gap in its own
    // run of entries, and as non-consecutive lengths in its RPUSH replies.
    let stop = false;
    const producer = async (p: number): Promise<number> => {
      let sent = 0;
      while (!stop) {
        let last: Future<unknown> | undefined;
        for (let k = 0; k < 20; k++) last = loop.sendCommand(conn, 'RPUSH', 'log', `p${p}:${sent++}`);
        await last;
      }
      return sent;
    };
    const blocks: Array<Promise<unknown[] | null>> = [];
    const blocker = async (b: number): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        const id = `b${b}:${i}`;
        const f = loop.multi(conn, [['RPUSH', 'log', `${id}:0`], ['RPUSH', 'log', `${id}:1`], ['RPUSH', 'log', `${id}:2`], ['RPUSH', 'log', `${id}:3`]]);
        blocks.push(Promise.resolve(f));
        await f;
      }
    };
    const producers = Array.from({ length: 10 }, (_, p) => producer(p));
    await Promise.all(Array.from({ length: 10 }, (_, b) => blocker(b)));
    stop = true;
    const produced = (await Promise.all(producers)).reduce((a, b) => a + b, 0);
    expect(produced).to.be.greaterThan(1000); // they really competed for the connection

    const replies = await Promise.all(blocks);
    expect(replies).to.have.length(1000);
    for (const r of replies) {
      const lengths = r as number[];
      expect(lengths[1]! - lengths[0]!).to.equal(1);
      expect(lengths[3]! - lengths[0]!).to.equal(3);
    }
    const log = (await server.command('LRANGE', 'log', 0, -1)) as string[];
    expect(log).to.have.length(4000 + produced);
    let checked = 0;
    for (let i = 0; i < log.length; i++) {
      if (!log[i]!.startsWith('b')) continue;
      const id = log[i]!.slice(0, -2);
      expect(log.slice(i, i + 4), `block ${id}`).to.deep.equal([0, 1, 2, 3].map((k) => `${id}:${k}`));
      i += 3;
      checked++;
    }
    expect(checked).to.equal(1000);
  });

  it('puts a WRONGTYPE inside EXEC at its position as a redloop ReplyError; the rest ran', async () => {
    const r = (await loop.multi(conn, [['SET', 's', 'x'], ['LPUSH', 's', 'y'], ['GET', 's'], ['INCR', 'n']]))!;
    expect(r[0]).to.equal('OK');
    expect(r[1]).to.be.instanceOf(ReplyError);
    expect((r[1] as ReplyError).code).to.equal('WRONGTYPE');
    expect((r[1] as ReplyError).command).to.equal('LPUSH');
    expect(r[2]).to.equal('x');
    expect(r[3]).to.equal(1);
  });

  it('rejects with ExecAbortError and the queued errors when a command is refused while queued; nothing ran', async () => {
    const o = await outcome(loop.multi(conn, [['SET', 'a', '1'], ['GET'], ['NOSUCHCOMMAND', 'x'], ['INCR', 'n']]));
    const err = errorOf<ExecAbortError>(o);
    expect(err).to.be.instanceOf(ExecAbortError);
    expect(err).to.be.instanceOf(ReplyError);
    expect(err.code).to.equal('EXECABORT');
    expect(err.queuedErrors).to.have.length(4);
    expect(err.queuedErrors[0]).to.equal(undefined);
    expect(err.queuedErrors[1]).to.be.instanceOf(ReplyError);
    expect(err.queuedErrors[1]!.command).to.equal('GET');
    expect(err.queuedErrors[2]!.message).to.match(/unknown command/);
    expect(err.queuedErrors[3]).to.equal(undefined);
    expect(await server.command('EXISTS', 'a', 'n')).to.equal(0);
    // The connection is out of the MULTI state: an ordinary command and another block work.
    expect(await loop.sendCommand(conn, 'SET', 'b', '2')).to.equal('OK');
    expect(await loop.multi(conn, [['GET', 'b']])).to.deep.equal(['2']);
  });

  it('refuses a block it cannot send before writing anything', async () => {
    for (const bad of [[], [['WATCH', 'k']], [['SET', 'a', '1'], ['EXEC']], [['SET', 'a', {}]], ['GET'], 'x']) {
      const err = errorOf(await outcome(loop.multi(conn, bad as never)));
      expect(err, JSON.stringify(bad)).to.be.instanceOf(TypeError);
    }
    expect(conn.stats.commandsSent).to.equal(0);
    expect(await server.command('EXISTS', 'a')).to.equal(0);
  });

  it('returns Buffers when asked', async () => {
    await server.command('SET', 'k', 'v');
    const r = (await loop.multi(conn, [['GET', 'k'], ['GET', 'k']], { returnBuffers: true }))!;
    expect(Buffer.isBuffer(r[0])).to.equal(true);
    expect(await loop.sendCommand(conn, 'GET', 'k')).to.equal('v'); // the decoder mode is back
  });

  it('batch: every outcome in order, a failed command in the middle is an outcome, never a rejection', async () => {
    const outcomes = await loop.batch(conn, [['SET', 'a', '1'], ['LPUSH', 'a', 'x'], ['GET', 'a'], ['NOSUCH'], ['INCR', 'n']]);
    expect(outcomes).to.have.length(5);
    expect(outcomes[0]).to.deep.equal({ ok: true, value: 'OK' });
    expect(outcomes[1]!.ok).to.equal(false);
    expect((outcomes[1] as unknown as { error: ReplyError }).error.code).to.equal('WRONGTYPE');
    expect(outcomes[2]).to.deep.equal({ ok: true, value: '1' });
    expect(outcomes[3]!.ok).to.equal(false);
    expect(outcomes[4]).to.deep.equal({ ok: true, value: 1 });
    expect(await loop.batch(conn, [])).to.deep.equal([]);
    expect(loop.unobservedErrors).to.equal(0);
  });

  it('a burst of 10k EVALSHA right after SCRIPT FLUSH: each NOSCRIPT is re-sent as EVAL and every call gets its own reply', async () => {
    const script = loop.script("redis.call('INCR', KEYS[1]); return ARGV[1]");
    expect(await script.run(conn, ['runs'], ['first'])).to.equal('first');
    expect(script.noscripts).to.equal(1); // never loaded before: EVAL once
    expect(await script.run(conn, ['runs'], ['second'])).to.equal('second');
    expect(script.noscripts).to.equal(1); // the server kept it
    expect(await server.command('SCRIPT', 'FLUSH')).to.equal('OK');
    const futures = Array.from({ length: 10_000 }, (_, i) => script.run(conn, ['runs'], [`call-${i}`]));
    const replies = await Future.all(futures);
    replies.forEach((r, i) => expect(r).to.equal(`call-${i}`));
    expect(script.noscripts).to.be.greaterThan(1); // the burst really met NOSCRIPT
    expect(await server.command('GET', 'runs')).to.equal('10002'); // each call ran exactly once
  });

  it('a script\'s errors: a failing script rejects with a ReplyError; errors inside its table are ReplyErrors', async () => {
    const failing = loop.script("return redis.call('LPUSH', KEYS[1], 'x')");
    await server.command('SET', 's', 'v');
    const err = errorOf(await outcome(failing.run(conn, ['s'])));
    expect(err).to.be.instanceOf(ReplyError);
    expect(err.message).to.match(/WRONGTYPE/);
    const table = loop.script("return {1, redis.error_reply('MYERR boom'), 'x'}");
    const r = (await table.run(conn)) as unknown[];
    expect(r[0]).to.equal(1);
    expect(r[1]).to.be.instanceOf(ReplyError);
    expect((r[1] as ReplyError).code).to.equal('MYERR');
    expect(r[2]).to.equal('x');
  });

  it('Future.allSettled (Promise.allSettled: futures are Promises) takes futures that already settled and ones that have not, in order', async () => {
    const early = loop.sendCommand(conn, 'NOSUCH');
    await outcome(Promise.resolve(1)); // let nothing happen yet; early is still in flight or failed
    const all = await Future.allSettled([early, loop.sendCommand(conn, 'PING'), loop.sendCommand(conn, 'NOSUCH2')]);
    expect(all.map((o) => o.status)).to.deep.equal(['rejected', 'fulfilled', 'rejected']);
    expect(all[1]).to.deep.equal({ status: 'fulfilled', value: 'PONG' });
    expect((all[0] as PromiseRejectedResult).reason).to.be.instanceOf(ReplyError);
    expect(loop.unobservedErrors).to.equal(0);
  });
});

describe('multi and batch on a shard set', function () {
  let servers: RedisServer[];
  let loop: EventLoop;
  let shards: ShardSet;

  before(async () => { servers = await startShards(3); });
  after(async () => { await Promise.all(servers.map((s) => s.stop())); });
  beforeEach(async () => {
    await Promise.all(servers.map((s) => s.command('FLUSHALL')));
    loop = new EventLoop();
    shards = loop.shards(servers.map((s) => s.url));
  });
  afterEach(async () => { await loop.close(); });

  it('runs a block whose keys share a slot on that slot\'s shard, even sent before the command table is known', async () => {
    const r = await loop.multi(shards, [['SET', '{u1}:a', '1'], ['INCR', '{u1}:n'], ['MGET', '{u1}:a', '{u1}:n']]);
    expect(r).to.deep.equal(['OK', 1, ['1', '1']]);
    const owner = servers[shards.shardOf('u1')]!;
    expect(await owner.command('GET', '{u1}:a')).to.equal('1');
  });

  it('refuses a block whose keys span slots, or that has no key, with a RoutingError before anything is written', async () => {
    await shards.whenReady();
    const before = shards.connections.map((c) => c.stats.commandsSent);
    const cross = errorOf(await outcome(loop.multi(shards, [['SET', 'a', '1'], ['SET', 'b', '2']])));
    expect(cross).to.be.instanceOf(RoutingError);
    expect(cross.message).to.match(/hash tag/);
    const keyless = errorOf(await outcome(loop.multi(shards, [['PING']])));
    expect(keyless).to.be.instanceOf(RoutingError);
    expect(shards.connections.map((c) => c.stats.commandsSent)).to.deep.equal(before);
    for (const s of servers) expect(await s.command('DBSIZE')).to.equal(0);
  });

  it('batch spreads the commands over the shards and keeps the outcomes in order', async () => {
    const commands: Array<[string, ...string[]]> = [];
    for (let i = 0; i < 300; i++) commands.push(['SET', `k${i}`, `v${i}`]);
    commands.splice(150, 0, ['LPUSH', 'k7', 'x']); // k7 is a string by then
    for (let i = 0; i < 300; i++) commands.push(['GET', `k${i}`]);
    const outcomes = await loop.batch(shards, commands);
    expect(outcomes).to.have.length(601);
    expect(outcomes[150]!.ok).to.equal(false);
    expect((outcomes[150] as unknown as { error: ReplyError }).error.code).to.equal('WRONGTYPE');
    for (let i = 0; i < 300; i++) expect(outcomes[301 + i]).to.deep.equal({ ok: true, value: `v${i}` });
    const sizes = await Promise.all(servers.map((s) => s.command('DBSIZE') as Promise<number>));
    for (const n of sizes) expect(n).to.be.greaterThan(50);
  });
});
