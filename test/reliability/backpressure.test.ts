// Backpressure: a connection tells how many bytes wait to be written and how many replies are
// owed, and `loop.drain(conn)` lets a producer wait for room, so memory stays bounded however
// many commands go through.
import { expect } from 'chai';
import { ClientStateError, EventLoop, type Future } from '../../lib/index.js';
import { rawCommand, startRedis, type RedisServer } from '../../harness/index.js';
import { nextEvent, nextMacrotask, outcome, within } from '../support/helpers.js';

const MB = 1024 * 1024;

describe('reliability: backpressure', function () {
  this.timeout(60_000);
  let server: RedisServer;
  before(async () => { server = await startRedis(); });
  after(async () => { await server.stop(); });
  afterEach(() => server.kill('SIGCONT'));

  it('pushes 5,000,000 commands through with loop.drain() in bounded memory, losing none', async function () {
    this.timeout(120_000);
    const loop = new EventLoop();
    try {
      const conn = loop.connect({ port: server.port, maxPending: 20_000 });
      await loop.sendCommand(conn, 'DEL', 'counter');
      global.gc?.();
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      let maxPending = 0;
      const N = 5_000_000;
      let last: Future<number> | undefined;
      for (let i = 1; i <= N; i++) {
        last = loop.sendCommand(conn, 'INCR', 'counter');
        if ((i & 1023) === 0) {
          if (conn.pendingReplies > maxPending) maxPending = conn.pendingReplies;
          await loop.drain(conn);
          if ((i & 0xffff) === 0) peak = Math.max(peak, process.memoryUsage().rss);
        }
      }
      expect(await within(last!, 30_000, 'the last reply')).to.equal(N);
      expect(await rawCommand(server.endpoint, 'GET', 'counter')).to.equal(String(N));
      expect(conn.stats.repliesReceived).to.equal(N + 1); // and the DEL
      expect(maxPending, 'replies owed never far above maxPending').to.be.at.most(20_000 + 1024);
      const grewMB = (peak - baseline) / MB;
      expect(grewMB, `rss grew by ${grewMB.toFixed(0)} MB`).to.be.below(250);
    } finally {
      await loop.close();
    }
  });

  it('exposes bytes waiting and replies pending, and drain() waits until both are under their limits', async () => {
    const loop = new EventLoop();
    try {
      const conn = loop.connect({ port: server.port, maxPending: 100, maxBufferedBytes: 64 * 1024 });
      await loop.sendCommand(conn, 'PING');
      expect(conn.pendingReplies).to.equal(0);
      expect(conn.bufferedBytes).to.equal(0);

      // Bytes queued in this tick count before the flush has written them.
      const big = 'x'.repeat(256 * 1024);
      const set = loop.sendCommand(conn, 'SET', 'big', big);
      expect(conn.pendingReplies).to.equal(1);
      expect(conn.bufferedBytes).to.be.at.least(big.length);
      let drained = false;
      const waiting = loop.drain(conn).then(() => { drained = true; });
      await nextMacrotask();
      await set;
      await within(waiting, 5000, 'drain after a big write');
      expect(drained).to.equal(true);
      expect(conn.bufferedBytes).to.be.below(64 * 1024);

      // Replies pending: a paused server lets them pile up; drain waits until they are under 100.
      server.kill('SIGSTOP');
      const fs: Future<string>[] = [];
      for (let i = 0; i < 250; i++) fs.push(loop.sendCommand(conn, 'ECHO', String(i)));
      expect(conn.pendingReplies).to.equal(250);
      drained = false;
      const room = loop.drain(conn).then(() => { drained = true; });
      await nextMacrotask();
      await nextMacrotask();
      expect(drained, 'no room while 250 replies are owed').to.equal(false);
      server.kill('SIGCONT');
      await within(room, 5000, 'room after SIGCONT');
      expect(conn.pendingReplies).to.be.below(100);
      expect(await Promise.all(fs)).to.deep.equal(fs.map((_, i) => String(i)));
    } finally {
      await loop.close();
    }
  });

  it('wakes drain() waiters when the connection drops and comes back (nothing else would wake them)', async () => {
    const victim = await startRedis();
    const loop = new EventLoop({ reconnect: { initialDelay: 10, maxDelay: 50 } });
    try {
      const conn = loop.connect({ port: victim.port, maxPending: 50 });
      await loop.sendCommand(conn, 'PING');
      victim.kill('SIGSTOP');
      const fs = Array.from({ length: 60 }, (_, i) => loop.sendCommand(conn, 'ECHO', String(i)));
      const room = loop.drain(conn);
      await nextMacrotask();
      victim.kill('SIGKILL');
      await within(room, 5000, 'drain() after the connection dropped');
      const results = await Promise.all(fs.map(outcome));
      expect(results.every((r) => !r.ok)).to.equal(true);
      const ready = nextEvent(loop, 'ready', (c) => c === conn);
      await victim.restart();
      await ready;
      expect(await loop.sendCommand(conn, 'ECHO', 'again')).to.equal('again');
    } finally {
      loop.disconnect();
      await victim.stop();
    }
  });

  it('rejects drain() waiters when the connection is closed for good', async () => {
    const loop = new EventLoop();
    const conn = loop.connect({ port: server.port, maxPending: 10 });
    await loop.sendCommand(conn, 'PING');
    server.kill('SIGSTOP');
    const fs = Array.from({ length: 20 }, (_, i) => loop.sendCommand(conn, 'ECHO', String(i)));
    const room = outcome(loop.drain(conn));
    await nextMacrotask();
    loop.disconnect();
    const r = await within(room, 2000, 'drain() after disconnect()');
    expect(!r.ok && r.error instanceof ClientStateError).to.equal(true);
    expect((await Promise.all(fs.map(outcome))).every((o) => !o.ok)).to.equal(true);
    const again = await outcome(loop.drain(conn));
    expect(!again.ok && again.error instanceof ClientStateError).to.equal(true);
  });
});
