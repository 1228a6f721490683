// What each way of awaiting futures promises: replies in order, each error with its own future,
// and a failure nobody awaited counted on the loop, never an unhandled rejection. The same
// batch is awaited with Future.all, Promise.all, `for ... await f`, and not at all.
import { expect } from 'chai';
import { ConnectionClosedError, EventLoop, Future, ReplyError, type Connection } from '../lib/index.js';
import { startRedis, type RedisServer } from '../harness/index.js';
import { rejection } from './support/helpers.js';

type Style = 'Future.all' | 'Promise.all' | 'await each';

async function awaitAll(style: Style, futures: Future<unknown>[]): Promise<unknown[]> {
  if (style === 'Future.all') return Future.all(futures);
  if (style === 'Promise.all') return Promise.all(futures);
  const out: unknown[] = [];
  for (const f of futures) out.push(await f);
  return out;
}

describe('awaiting futures: every style keeps the same promises', function () {
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  let unhandled: unknown[];
  const onUnhandled = (r: unknown) => unhandled.push(r);
  before(async () => { server = await startRedis(); });
  after(async () => { await server.stop(); });
  beforeEach(async () => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
    loop = new EventLoop();
    conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'SET', 'str', 'x');
  });
  afterEach(async () => {
    await loop.close();
    await new Promise((r) => setImmediate(r));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).to.deep.equal([]);
  });

  for (const style of ['Future.all', 'Promise.all', 'await each'] as const) {
    it(`${style}: 2000 replies in the order sent, each to its own future`, async () => {
      const futures = Array.from({ length: 2000 }, (_, i) => loop.sendCommand(conn, 'ECHO', `e${i}`));
      expect(await awaitAll(style, futures)).to.deep.equal(Array.from({ length: 2000 }, (_, i) => `e${i}`));
      expect(futures.every((f) => f.settled && f.observed)).to.equal(true);
    });

    it(`${style}: an error reply rejects with a ReplyError (code, command); its neighbours keep their replies; nothing is reported as unobserved`, async () => {
      let reported = 0;
      loop.on('unobservedError', () => reported++);
      const futures = [loop.sendCommand(conn, 'ECHO', 'a'), loop.sendCommand(conn, 'incr', 'str'), loop.sendCommand(conn, 'ECHO', 'c')];
      const err = await rejection(awaitAll(style, futures));
      expect(err).to.be.instanceOf(ReplyError);
      expect([(err as ReplyError).code, (err as ReplyError).command]).to.deep.equal(['ERR', 'INCR']);
      // await each stops at the failure; the batches settle every future anyway.
      await futures[2]!;
      expect([futures[0]!.value, futures[2]!.value]).to.deep.equal(['a', 'c']);
      await new Promise((r) => setImmediate(r));
      expect(reported).to.equal(0);
      expect(loop.unobservedErrors).to.equal(0);
    });

    it(`${style}: a future that failed before it was awaited is not reported (awaited within the macrotask)`, async () => {
      let reported = 0;
      loop.on('unobservedError', () => reported++);
      const bad = loop.sendCommand(conn, 'INCR', 'str');
      await loop.sendCommand(conn, 'PING'); // the error reply has been read by now
      expect(bad.settled).to.equal(true);
      expect(bad.observed).to.equal(false);
      const err = await rejection(awaitAll(style, [bad]));
      expect(err).to.be.instanceOf(ReplyError);
      await new Promise((r) => setImmediate(r));
      expect(reported).to.equal(0);
    });
  }

  it('a burst of 20,000 in one tick goes out in slices as it is made; cut by a lost socket before the tick ends, the written slices fail as written and the rest is requeued and answered in order', async () => {
    await loop.sendCommand(conn, 'PING');
    const sentBefore = conn.stats.commandsSent;
    const futures = Array.from({ length: 20_000 }, (_, i) => loop.sendCommand(conn, 'ECHO', i % 7 === 0 ? Buffer.from(`b${i}`) : `s${i}`));
    const sliced = conn.stats.commandsSent - sentBefore;
    expect(sliced, 'commands written before the tick ended').to.be.within(256, 20_000 - 1);
    expect(sliced % 256, 'whole slices').to.equal(0);
    (conn as unknown as { socket: { destroy(): void } }).socket.destroy(); // before this tick's flush
    const outcomes = await Promise.allSettled(futures);
    for (let i = 0; i < 20_000; i++) {
      const o = outcomes[i]!;
      const want = i % 7 === 0 ? `b${i}` : `s${i}`;
      if (i >= sliced) {
        expect(o, `requeued command ${i}`).to.deep.equal({ status: 'fulfilled', value: want });
      } else if (o.status === 'rejected') {
        // A written command whose reply was lost with the socket: it may have run.
        expect(o.reason, `written command ${i}`).to.be.instanceOf(ConnectionClosedError);
        expect((o.reason as ConnectionClosedError).written).to.equal(true);
      } else {
        expect(o.value, `written command ${i} answered before the socket went`).to.equal(want);
      }
    }
    expect(conn.stats.reconnects).to.equal(1);
  });

  it('un-awaited: failures are counted and emitted with their command, never unhandled rejections; successes leave nothing behind', async () => {
    const seen: string[] = [];
    loop.on('unobservedError', (err, command) => seen.push(`${command} ${(err as ReplyError).code}`));
    for (let i = 0; i < 100; i++) loop.sendCommand(conn, i % 10 === 0 ? 'INCR' : 'ECHO', i % 10 === 0 ? 'str' : 'x');
    await loop.sendCommand(conn, 'PING');
    await new Promise((r) => setImmediate(r));
    expect(loop.unobservedErrors).to.equal(10);
    expect(seen).to.deep.equal(Array(10).fill('INCR ERR'));
  });

  it('a future is a native Promise: Promise.resolve(f) is f, then/catch/finally chain, a bare Promise.resolve on a failure is not unhandled', async () => {
    const f = loop.sendCommand(conn, 'ECHO', 'v');
    expect(f).to.be.instanceOf(Promise);
    expect(Promise.resolve(f)).to.equal(f);
    expect(await f.then((v) => `${v}!`).finally(() => undefined)).to.equal('v!');
    const failed = loop.sendCommand(conn, 'INCR', 'str');
    void Promise.resolve(failed); // observed, but no handler: the future's own failure must stay quiet
    expect(await failed.catch((e: ReplyError) => e.code)).to.equal('ERR');
    expect(await Promise.allSettled([loop.sendCommand(conn, 'ECHO', 'ok'), loop.sendCommand(conn, 'INCR', 'str')]))
      .to.satisfy((r: PromiseSettledResult<unknown>[]) => r[0]!.status === 'fulfilled' && r[1]!.status === 'rejected');
    expect(await Promise.race([loop.sendCommand(conn, 'ECHO', 'first'), new Promise((r) => setTimeout(r, 5000))])).to.equal('first');
  });

  it('Future.all keeps per-position types like Promise.all, accepts values and promises, and a future in two batches', async () => {
    await loop.sendCommand(conn, 'SET', 'n', 5);
    const n = loop.sendCommand<number>(conn, 'INCR', 'n');
    const s = loop.sendCommand<string>(conn, 'ECHO', 's');
    const [num, str, plain, promised]: [number, string, number, string] = await Future.all([n, s, 7, Promise.resolve('p')] as const);
    expect([num, str, plain, promised]).to.deep.equal([6, 's', 7, 'p']);
    const shared = loop.sendCommand<string>(conn, 'ECHO', 'shared');
    const [x, y] = await Promise.all([Future.all([shared]), Future.all([shared, s])]);
    expect(x).to.deep.equal(['shared']);
    expect(y).to.deep.equal(['shared', 's']);
    expect(await Future.all([])).to.deep.equal([]);
  });
});
