// Timeouts: a timed-out future rejects with TimeoutError but keeps its slot in the FIFO, so
// its late reply is read and dropped and never handed to the command behind it. With
// resetOnTimeout the connection is rebuilt instead.
import { expect } from 'chai';
import {
  ConfigError, ConnectionClosedError, EventLoop, ReplyError, TimeoutError, type Future,
} from '../../lib/index.js';
import { rawCommand, startRedis, type RedisServer } from '../../harness/index.js';
import { startFakeServer } from '../../harness/fake-server.js';
import { errorOf, nextEvent, nextMacrotask, outcome, recordEvents, rejection, within } from '../support/helpers.js';

/** xorshift32: a seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

describe('reliability: timeouts', function () {
  this.timeout(60_000);

  describe('a paused server (SIGSTOP / SIGCONT)', () => {
    let server: RedisServer;
    before(async () => { server = await startRedis(); });
    after(async () => { await server.stop(); });
    afterEach(() => server.kill('SIGCONT'));

    it('commandTimeout fires, the late replies are read and dropped, every later command gets its own reply', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: server.port, commandTimeout: 200 });
        expect(await loop.sendCommand(conn, 'SET', 'k', 'before')).to.equal('OK');
        server.kill('SIGSTOP');
        const stalled: Future<string>[] = [];
        for (let i = 0; i < 100; i++) stalled.push(loop.sendCommand(conn, 'ECHO', `stalled${i}`));
        const results = await within(Promise.all(stalled.map(outcome)), 5000, 'the stalled commands to time out');
        for (const r of results) {
          expect(r.ok).to.equal(false);
          const err = errorOf<Error>(r);
          expect(err).to.be.instanceOf(TimeoutError);
          expect(err.name).to.equal('TimeoutError');
          expect(err.message).to.match(/^ECHO: no reply .* within the command timeout; its reply will be read and dropped/);
        }
        expect(conn.pendingReplies, 'timed-out commands keep their FIFO slots').to.equal(100);
        server.kill('SIGCONT');

        const after: Future<string>[] = [];
        for (let i = 0; i < 1000; i++) after.push(loop.sendCommand(conn, 'ECHO', `after${i}`));
        const values = await within(Promise.all(after), 5000, 'the commands after SIGCONT');
        values.forEach((v, i) => { if (v !== `after${i}`) expect.fail(`command ${i} after SIGCONT got ${v}`); });
        expect(await loop.sendCommand(conn, 'GET', 'k')).to.equal('before');
        expect(conn.pendingReplies).to.equal(0);
        expect(conn.stats.repliesReceived, 'the late replies were read').to.equal(conn.stats.commandsSent);
      } finally {
        await loop.close();
      }
    });

    it('close() is not held by commands that timed out on a paused server', async () => {
      const loop = new EventLoop();
      const conn = loop.connect({ port: server.port, commandTimeout: 100 });
      await loop.sendCommand(conn, 'PING');
      server.kill('SIGSTOP');
      const stalled = loop.sendCommand(conn, 'ECHO', 'stalled');
      expect(errorOf(await within(outcome(stalled), 2000, 'the timeout'))).to.be.instanceOf(TimeoutError);
      await within(loop.close(), 5000, 'close() with a paused server');
      expect(conn.state).to.equal('closed');
    });

    it('honours the loop-wide commandTimeout and a shorter per-command timeout, in any order', async () => {
      const loop = new EventLoop({ commandTimeout: 600 });
      try {
        const conn = loop.connect(server.url);
        await loop.sendCommand(conn, 'PING');
        server.kill('SIGSTOP');
        const started = Date.now();
        const long = loop.sendCommand(conn, 'ECHO', 'loop default');
        const short = loop.send(conn, ['ECHO', 'own timeout'], { timeout: 50 });
        const none = loop.send(conn, ['ECHO', 'no timeout'], { timeout: 0 });
        const s = await within(outcome(short), 2000, 'the per-command timeout');
        expect(!s.ok && s.error instanceof TimeoutError).to.equal(true);
        expect(errorOf<Error>(s).message).to.match(/within 50ms/);
        expect(long.settled, 'the loop default is longer').to.equal(false);
        const l = await within(outcome(long), 3000, 'the loop-wide commandTimeout');
        expect(!l.ok && l.error instanceof TimeoutError).to.equal(true);
        expect(Date.now() - started).to.be.at.least(550);
        expect(none.settled, 'timeout: 0 means no limit').to.equal(false);
        server.kill('SIGCONT');
        expect(await within(none, 5000, 'the command without a limit')).to.equal('no timeout');
        expect(await loop.sendCommand(conn, 'ECHO', 'next')).to.equal('next');
      } finally {
        await loop.close();
      }
    });

    it('resetOnTimeout: the connection is rebuilt, what was in flight rejects as written, later commands work', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: server.port, commandTimeout: 150, resetOnTimeout: true, reconnect: { initialDelay: 10, maxDelay: 50 } });
        await loop.sendCommand(conn, 'PING');
        server.kill('SIGSTOP');
        const closed = nextEvent(loop, 'close', (c) => c === conn);
        const first = loop.sendCommand(conn, 'ECHO', 'first');
        const second = loop.send(conn, ['ECHO', 'second'], { timeout: 0 }); // no limit of its own
        const f = await within(outcome(first), 3000, 'the timeout');
        expect(!f.ok && f.error instanceof TimeoutError).to.equal(true);
        const [, reason] = await closed;
        expect(reason).to.be.instanceOf(TimeoutError);
        expect(reason.message).to.match(/resetOnTimeout/);
        const s = await within(outcome(second), 1000, 'the command behind it');
        expect(!s.ok && s.error instanceof ConnectionClosedError && s.error.written).to.equal(true);
        server.kill('SIGCONT');
        expect(await within(loop.sendCommand(conn, 'ECHO', 'fresh'), 5000, 'a command after the reset')).to.equal('fresh');
      } finally {
        await loop.close();
      }
    });
  });

  describe('per-command timeouts', () => {
    let server: RedisServer;
    before(async () => { server = await startRedis(); });
    after(async () => { await server.stop(); });

    it('resetOnTimeout applies to a per-command timeout too (a BLPOP that overstays is cut off on the server)', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: server.port, resetOnTimeout: true, reconnect: { initialDelay: 10, maxDelay: 50 } });
        await loop.sendCommand(conn, 'PING');
        const closed = nextEvent(loop, 'close', (c) => c === conn, 3000);
        const blpop = loop.send(conn, ['BLPOP', 'reset-queue', 0], { timeout: 100 });
        const behind = loop.sendCommand(conn, 'ECHO', 'behind');
        const b = await within(outcome(blpop), 3000, 'the BLPOP timeout');
        expect(!b.ok && b.error instanceof TimeoutError).to.equal(true);
        const [, reason] = await closed;
        expect(reason).to.be.instanceOf(TimeoutError);
        const e = await outcome(behind);
        expect(!e.ok && e.error instanceof ConnectionClosedError && e.error.written).to.equal(true);
        await nextEvent(loop, 'ready', (c) => c === conn);
        // The blocked client died with the old socket: the element stays in the list.
        expect(await rawCommand(server.endpoint, 'LPUSH', 'reset-queue', 'job')).to.equal(1);
        expect(await loop.sendCommand(conn, 'LLEN', 'reset-queue')).to.equal(1);
      } finally {
        await loop.close();
      }
    });

    it('close() does not wait forever for a command that timed out (a BLPOP 0 nobody will answer)', async () => {
      const loop = new EventLoop();
      const conn = loop.connect(server.url);
      await loop.sendCommand(conn, 'PING');
      const blpop = loop.send(conn, ['BLPOP', 'never-filled', 0], { timeout: 50 });
      expect(errorOf(await within(outcome(blpop), 2000, 'the BLPOP timeout'))).to.be.instanceOf(TimeoutError);
      await within(loop.close(), 5000, 'close() after a timed-out BLPOP');
      expect(conn.state).to.equal('closed');
    });

    it('a command timing out in the offline queue does not reset a connection that is still connecting', async () => {
      // The fake server accepts but never answers AUTH: the handshake outlasts the command.
      const fake = await startFakeServer({ onCommand: (cmd) => (cmd[0] === 'AUTH' ? null : undefined) });
      const loop = new EventLoop();
      const events = recordEvents(loop);
      try {
        const conn = loop.connect({ port: fake.port, password: 'pw', connectTimeout: 500, commandTimeout: 50, resetOnTimeout: true, reconnect: false });
        const r = await within(outcome(loop.sendCommand(conn, 'PING')), 2000, 'the offline command to time out');
        expect(!r.ok && r.error instanceof TimeoutError).to.equal(true);
        expect(errorOf<Error>(r).message).to.match(/never written/);
        await nextMacrotask();
        expect(events.filter(([name]) => name === 'close'), 'no reset while connecting').to.have.length(0);
        await nextEvent(loop, 'end', (c) => c === conn);
        const [, err] = events.find(([name]) => name === 'error')!;
        expect(err).to.be.instanceOf(TimeoutError);
        expect((err as Error).message).to.match(/within 500ms \(connectTimeout\)/);
      } finally {
        loop.disconnect();
        await fake.close();
      }
    });
  });

  it('times out queued commands while disconnected, even behind one that has no deadline', async () => {
    const gone = await startRedis();
    await gone.stop(); // nothing listens on its port now
    const loop = new EventLoop();
    try {
      const conn = loop.connect({ port: gone.port, commandTimeout: 100, reconnect: { initialDelay: 1000 } });
      const unlimited = loop.send(conn, ['PING'], { timeout: 0 });
      const limited = loop.sendCommand(conn, 'ECHO', 'limited');
      const r = await within(outcome(limited), 1000, 'the queued command with a deadline');
      expect(errorOf(r)).to.be.instanceOf(TimeoutError);
      expect(errorOf(r).message).to.match(/^ECHO: no connection to .* within the command timeout \(never written\)/);
      expect(unlimited.settled).to.equal(false);
    } finally {
      loop.disconnect();
    }
  });

  describe('timeouts longer than a Node timer can hold (2^31-1 ms)', () => {
    // setTimeout() runs a longer delay after 1 ms: such a timeout would fire at once.
    const TOO_LONG = 2 ** 31;
    let server: RedisServer;
    before(async () => { server = await startRedis(); });
    after(async () => { await server.stop(); });

    it('a per-command timeout is refused with a ConfigError, never a TimeoutError after 1 ms', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect(server.url);
        const r = await within(outcome(loop.send(conn, ['BLPOP', 'no-such-list', '0.2'], { timeout: TOO_LONG })), 3000, 'the BLPOP');
        expect(errorOf(r)).to.be.instanceOf(ConfigError);
        expect(errorOf(r).message).to.match(/timeout must be .*2147483647/);
        expect(await loop.send(conn, ['BLPOP', 'no-such-list', '0.05'], { timeout: 2 ** 31 - 1 })).to.equal(null);
      } finally {
        await loop.close();
      }
    });

    it('connectTimeout, commandTimeout and reconnect delays are refused by connect() (ConfigError)', () => {
      const loop = new EventLoop();
      try {
        for (const options of [
          { connectTimeout: TOO_LONG }, { commandTimeout: TOO_LONG }, { commandTimeout: Infinity },
          { reconnect: { maxDelay: TOO_LONG } }, { reconnect: { initialDelay: Infinity } },
        ]) {
          expect(() => loop.connect({ port: server.port, ...options }), JSON.stringify(options)).to.throw(ConfigError, /at most 2147483647/);
        }
        expect(loop.connections).to.have.length(0);
      } finally {
        loop.disconnect();
      }
    });

    it('massInsert refuses such a timeout too', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect(server.url);
        const err = await rejection(loop.massInsert(conn, [['SET', 'k', 'v']], { timeout: TOO_LONG }));
        expect(err).to.be.instanceOf(ConfigError); // a bad option value, as connect()'s
        expect(err!.message).to.match(/at most 2147483647/);
      } finally {
        await loop.close();
      }
    });
  });

  describe('connectTimeout', () => {
    it('fires when the server accepts but never answers the handshake, and queued commands do not hang', async () => {
      const fake = await startFakeServer({ onCommand: () => null });
      const loop = new EventLoop();
      const events = recordEvents(loop);
      try {
        const conn = loop.connect({
          port: fake.port, password: 'pw', db: 2, connectTimeout: 100,
          reconnect: { initialDelay: 5, maxDelay: 20, failQueuedAfter: 2, maxAttempts: 3 },
        });
        const queued = loop.sendCommand(conn, 'GET', 'k');
        const r = await within(outcome(queued), 5000, 'the queued command');
        expect(!r.ok && r.error instanceof ConnectionClosedError && !r.error.written).to.equal(true);
        await within(nextEvent(loop, 'end', (c) => c === conn), 5000, 'the end');
        const timeouts = events.filter(([name, err]) => name === 'error' && err instanceof TimeoutError);
        expect(timeouts).to.have.length(4); // the first connect and three reconnects
        expect(fake.connectionCount).to.equal(4);
        expect(fake.clients[0]!.commands.map((c) => c[0])).to.deep.equal(['HELLO', 'SELECT']); // nothing else (AUTH goes with HELLO 3)
      } finally {
        loop.disconnect();
        await fake.close();
      }
    });

    it('a cluster whose seed never answers CLUSTER SHARDS rejects the waiting commands at the first failed read past connectTimeout', async () => {
      const fake = await startFakeServer({ onCommand: (cmd) => (cmd[0]!.toUpperCase() === 'CLUSTER' ? null : undefined) });
      const loop = new EventLoop();
      loop.on('error', () => {});
      try {
        const cluster = loop.cluster([`redis://127.0.0.1:${fake.port}`], { connectTimeout: 100 });
        const r = await within(outcome(loop.sendCommand(cluster, 'GET', 'k')), 10_000, 'the waiting command');
        expect(!r.ok && r.error instanceof ConnectionClosedError && !r.error.written, String(errorOf(r))).to.equal(true);
        expect(errorOf(r).message).to.match(/no seed of the cluster answered CLUSTER SHARDS within 100ms \(connectTimeout\)/);
        // Before, the clock started at the first failed read (2 s in): the second one rejected.
        const reads = fake.clients.flatMap((c) => c.commands).filter((c) => c[0]!.toUpperCase() === 'CLUSTER');
        expect(reads).to.have.length(1);
      } finally {
        loop.disconnect();
        await fake.close();
      }
    });

    it('fires when a TLS server never finishes the TLS handshake', async () => {
      const fake = await startFakeServer({ onData: () => {} }); // plain TCP: never answers the ClientHello
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: fake.port, tls: {}, connectTimeout: 100, reconnect: false });
        const [err] = await nextEvent(loop, 'error', (e, c) => c === conn, 3000);
        expect(err).to.be.instanceOf(TimeoutError);
        await nextEvent(loop, 'end', (c) => c === conn, 3000);
      } finally {
        loop.disconnect();
        await fake.close();
      }
    });
  });

  it('1,000,000 mixed commands, 1 in 100 failing on the server, random client-side timeouts: every success gets its own reply', async function () {
    this.timeout(120_000);
    const server = await startRedis({ args: ['--enable-debug-command', 'yes'] });
    const loop = new EventLoop();
    try {
      const conn = loop.connect(server.url);
      const KEYS = 1000;
      const mset: string[] = ['MSET'];
      for (let j = 0; j < KEYS; j++) mset.push(`k${j}`, `v${j}`);
      await loop.send(conn, mset as [string, ...string[]]);
      await loop.sendCommand(conn, 'RPUSH', 'a-list', 'x');

      const N = 1_000_000;
      const next = rng(0x5eed);
      const counters = new Array<number>(16).fill(0);
      let ok = 0;
      let wrongType = 0;
      let timedOut = 0;
      let settled = 0;
      const problems: string[] = [];
      const note = (msg: string) => { if (problems.length < 10) problems.push(msg); };
      const rejected = (i: number, expectWrongType: boolean) => (err: Error) => {
        settled++;
        if (err instanceof TimeoutError) timedOut++;
        else if (expectWrongType && err instanceof ReplyError && err.code === 'WRONGTYPE') wrongType++;
        else note(`command ${i} rejected with ${err.name}: ${err.message}`);
      };
      const resolved = (i: number, expected: unknown) => (value: unknown) => {
        settled++;
        if (value === expected) ok++;
        else note(`command ${i} expected ${String(expected)} got ${String(value)}`);
      };

      for (let i = 0; i < N; i++) {
        if (i % 50_000 === 25_000) loop.sendCommand(conn, 'DEBUG', 'SLEEP', '0.02'); // makes the 1 ms timeouts below fire
        const r = next();
        const options = (r & 0xff) < 2 ? { timeout: 1 + (r >>> 8) % 3 } : undefined;
        if (i % 100 === 99) {
          loop.send(conn, ['INCR', 'a-list'], options).then(resolved(i, 'WRONGTYPE'), rejected(i, true));
          continue;
        }
        const j = (r >>> 12) % KEYS;
        switch ((r >>> 24) % 3) {
          case 0:
            loop.send(conn, ['ECHO', `e${i}`], options).then(resolved(i, `e${i}`), rejected(i, false));
            break;
          case 1:
            loop.send(conn, ['GET', `k${j}`], options).then(resolved(i, `v${j}`), rejected(i, false));
            break;
          default: {
            const c = j & 15;
            const by = 1 + (j >>> 4);
            counters[c]! += by; // the server runs it even if the client stops waiting
            loop.send(conn, ['INCRBY', `c${c}`, by], options).then(resolved(i, counters[c]), rejected(i, false));
          }
        }
        if ((i & 1023) === 1023) await loop.drain(conn);
      }
      await within(loop.sendCommand(conn, 'PING'), 30_000, 'the last reply');
      await nextMacrotask();
      expect(problems).to.deep.equal([]);
      expect(settled).to.equal(N);
      expect(ok + wrongType + timedOut).to.equal(N);
      expect(timedOut, 'some client-side timeouts fired').to.be.greaterThan(0);
      expect(wrongType + timedOut).to.be.at.least(N / 100);
      expect(wrongType).to.be.at.least(N / 100 - timedOut);
      expect(conn.pendingReplies).to.equal(0);
      expect(conn.stats.repliesReceived).to.equal(conn.stats.commandsSent);
      for (let c = 0; c < 16; c++) {
        expect(await loop.sendCommand(conn, 'GET', `c${c}`)).to.equal(String(counters[c]));
      }
    } finally {
      await loop.close();
      await server.stop();
    }
  });
});
