// Reconnects: a server killed, a client killed from another connection, a server that stays
// down. In-flight commands reject with ConnectionClosedError (written: true) and are never
// sent again; unwritten ones wait in the offline queue and go out after the handshake.
import net from 'node:net';
import { once } from 'node:events';
import { expect } from 'chai';
import {
  AuthError, ClientStateError, ConnectionClosedError, EventLoop, type Future, type ReconnectingInfo,
} from '../../lib/index.js';
import { backoffDelay, DEFAULT_RECONNECT } from '../../lib/base/options.js';
import { rawCommand, rawCommands, startRedis, startShards, type RedisServer } from '../../harness/index.js';
import { startFakeServer } from '../../harness/fake-server.js';
import { nextEvent, nextMacrotask, outcome, recordEvents, within, errorOf } from '../support/helpers.js';

const FAST_RECONNECT = { initialDelay: 10, maxDelay: 100, jitter: 0.5 };

describe('reliability: reconnect', function () {
  this.timeout(60_000);

  it('SIGKILL of one shard mid-stream: its futures all settle, the other shard loses nothing, a restart brings it back', async () => {
    const [killed, healthy] = await startShards(2) as [RedisServer, RedisServer];
    const loop = new EventLoop({ reconnect: { ...FAST_RECONNECT, failQueuedAfter: 3 } });
    try {
      const a = loop.connect(killed.url);
      const b = loop.connect(healthy.url);
      const n = 100_000;
      const onA: Future<string>[] = [];
      const onB: Future<number>[] = [];
      let killedAt = -1;
      for (let i = 0; i < n; i++) {
        onA.push(loop.sendCommand(a, 'ECHO', `a${i}`));
        onB.push(loop.sendCommand(b, 'RPUSH', 'seq', i));
        if ((i & 1023) === 1023) {
          await within(loop.drain(a), 10_000, `room on the killed shard at command ${i}`);
          await within(loop.drain(b), 10_000, `room on the healthy shard at command ${i}`);
          if (killedAt === -1 && a.stats.repliesReceived >= 20_000) {
            killed.kill('SIGKILL');
            killedAt = i;
          }
        }
      }
      expect(killedAt, 'the shard was killed while commands streamed').to.be.greaterThan(0);

      // Every future on the killed shard settles: its own reply, or ConnectionClosedError.
      const results = await within(Promise.all(onA.map(outcome)), 20_000, 'every future on the killed shard');
      let resolved = 0;
      let inFlight = 0;
      let unwritten = 0;
      results.forEach((r, i) => {
        if (r.ok) {
          if (r.value !== `a${i}`) expect.fail(`future ${i} on the killed shard got ${r.value}`);
          resolved++;
          return;
        }
        if (!(r.error instanceof ConnectionClosedError)) expect.fail(`future ${i} rejected with ${r.error.name}: ${r.error.message}`);
        if (r.error.written) inFlight++;
        else unwritten++;
      });
      expect(resolved).to.be.at.least(20_000);
      expect(inFlight, 'commands in flight at the kill').to.be.greaterThan(0);
      expect(unwritten, 'commands sent while it was down').to.be.greaterThan(0);
      expect(resolved + inFlight + unwritten).to.equal(n);

      // The healthy shard: every reply is its own (RPUSH returns the list length), nothing lost.
      const lengths = await within(Promise.all(onB), 20_000, 'the healthy shard');
      lengths.forEach((len, i) => { if (len !== i + 1) expect.fail(`RPUSH ${i} returned ${len}`); });
      expect(await rawCommand(healthy.endpoint, 'LLEN', 'seq')).to.equal(n);

      // Back on the same port: the reconnect loop finds it and new commands succeed.
      const ready = nextEvent(loop, 'ready', (c) => c === a, 20_000);
      await killed.restart();
      await ready;
      expect(await loop.sendCommand(a, 'ECHO', 'back')).to.equal('back');
      expect(a.state).to.equal('ready');
    } finally {
      loop.disconnect();
      await Promise.all([killed.stop(), healthy.stop()]);
    }
  });

  describe('CLIENT KILL from another connection', () => {
    let server: RedisServer;
    before(async () => { server = await startRedis(); });
    after(async () => { await server.stop(); });

    it('rejects the in-flight command as written, never re-sends it, and replays the handshake before queued commands', async () => {
      const loop = new EventLoop({ reconnect: FAST_RECONNECT });
      const events = recordEvents(loop);
      try {
        const conn = loop.connect({ port: server.port, db: 3, name: 'victim' });
        const id = await loop.sendCommand<number>(conn, 'CLIENT', 'ID');
        const blpop = loop.sendCommand(conn, 'BLPOP', 'never-pushed', 0);
        await nextMacrotask(); // the BLPOP has been written

        // Commands sent from the 'close' listener itself must wait for the new connection
        // and its handshake (a reply to SELECT must not reach them).
        const queued: Future<unknown>[] = [];
        loop.once('close', () => {
          queued.push(loop.sendCommand(conn, 'CLIENT', 'GETNAME'), loop.sendCommand(conn, 'SET', 'after-kill', 'yes'));
        });
        const ready = nextEvent(loop, 'ready', (c) => c === conn && conn.stats.reconnects === 1);
        expect(await rawCommand(server.endpoint, 'CLIENT', 'KILL', 'ID', String(id))).to.equal(1);

        const lost = await within(outcome(blpop), 5000, 'the in-flight BLPOP');
        expect(lost.ok).to.equal(false);
        const err = errorOf<ConnectionClosedError>(lost);
        expect(err).to.be.instanceOf(ConnectionClosedError);
        expect(err.name).to.equal('ConnectionClosedError');
        expect(err.written).to.equal(true);
        expect(err.command).to.equal('BLPOP');
        expect(err.message).to.match(/may have run on the server/);

        await ready;
        expect(queued).to.have.length(2);
        expect(await within(Promise.all(queued), 5000, 'the queued commands')).to.deep.equal(['victim', 'OK']);
        expect(await rawCommands(server.endpoint, [['SELECT', 3], ['GET', 'after-kill']])).to.deep.equal(['OK', 'yes']);

        // Never re-sent: a BLPOP sent again would take this element.
        expect(await rawCommand(server.endpoint, 'LPUSH', 'never-pushed', 'x')).to.equal(1);
        loop.send(conn, ['SELECT', '0']);
        expect(await loop.sendCommand(conn, 'LLEN', 'never-pushed')).to.equal(1);

        const seq = events.filter(([, ...args]) => args.includes(conn))
          .map(([name]) => name).filter((name) => name !== 'error');
        expect(seq).to.deep.equal(['connect', 'ready', 'close', 'reconnecting', 'connect', 'ready']);
        const info = events.find(([name]) => name === 'reconnecting')![1] as ReconnectingInfo;
        expect(info.attempt).to.equal(1);
        expect(info.delay).to.be.within(5, 10);
        expect(info.error).to.be.instanceOf(Error);
      } finally {
        await loop.close();
      }
    });

    it('a throwing event listener does not stop the reconnect; its error is rethrown as uncaught', async () => {
      const loop = new EventLoop({ reconnect: FAST_RECONNECT });
      const mochaHandlers = process.listeners('uncaughtException');
      const uncaught: Error[] = [];
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', (err) => uncaught.push(err));
      try {
        const conn = loop.connect(server.url);
        const id = await loop.sendCommand<number>(conn, 'CLIENT', 'ID');
        loop.once('close', () => { throw new Error('a bug in a close listener'); });
        const ready = nextEvent(loop, 'ready', (c) => c === conn && conn.stats.reconnects === 1);
        await rawCommand(server.endpoint, 'CLIENT', 'KILL', 'ID', String(id));
        await ready;
        expect(await loop.sendCommand(conn, 'ECHO', 'still here')).to.equal('still here');
        expect(uncaught.map((e) => e.message)).to.deep.equal(['a bug in a close listener']);
      } finally {
        process.removeAllListeners('uncaughtException');
        for (const handler of mochaHandlers) process.on('uncaughtException', handler);
        await loop.close();
      }
    });

    it('with reconnect off: in-flight commands reject, the connection ends, later commands reject at once', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: server.port, reconnect: false });
        const id = await loop.sendCommand<number>(conn, 'CLIENT', 'ID');
        const blpop = loop.sendCommand(conn, 'BLPOP', 'nothing-here', 0);
        await nextMacrotask();
        const ended = nextEvent(loop, 'end', (c) => c === conn);
        await rawCommand(server.endpoint, 'CLIENT', 'KILL', 'ID', String(id));
        const lost = await within(outcome(blpop), 5000, 'the in-flight BLPOP');
        expect(!lost.ok && lost.error instanceof ConnectionClosedError && lost.error.written).to.equal(true);
        await ended;
        expect(conn.state).to.equal('closed');
        const later = await within(outcome(loop.sendCommand(conn, 'PING')), 1000, 'a command after the end');
        expect(later.ok).to.equal(false);
        expect(errorOf<Error>(later).message).to.match(/reconnect is off/);
      } finally {
        await loop.close();
      }
    });
  });

  describe('a server that stays down', () => {
    it('backs off exponentially with jitter, fails queued commands after failQueuedAfter, gives up after maxAttempts', async () => {
      const server = await startRedis();
      const loop = new EventLoop();
      const attempts: ReconnectingInfo[] = [];
      loop.on('reconnecting', (info) => attempts.push(info));
      try {
        const policy = { initialDelay: 8, factor: 2, maxDelay: 40, jitter: 0.5, failQueuedAfter: 3, maxAttempts: 6 };
        const conn = loop.connect({ port: server.port, reconnect: policy });
        await loop.sendCommand(conn, 'PING');
        const ended = nextEvent(loop, 'end', (c) => c === conn);
        server.kill('SIGKILL');
        await nextEvent(loop, 'close', (c) => c === conn);
        const queued = loop.sendCommand(conn, 'ECHO', 'queued while down'); // offline queue
        expect(conn.stats.offlineQueued).to.equal(1);

        const q = await within(outcome(queued), 5000, 'the queued command');
        expect(q.ok).to.equal(false);
        const qe = errorOf<ConnectionClosedError>(q);
        expect(qe).to.be.instanceOf(ConnectionClosedError);
        expect(qe.written).to.equal(false);
        expect(qe.message).to.match(/never written/);
        expect(attempts.length).to.equal(policy.failQueuedAfter);

        // Fail fast from now on: no caller waits for a server that is not there.
        const fast = await within(outcome(loop.sendCommand(conn, 'PING')), 100, 'a command while failing fast');
        expect(fast.ok).to.equal(false);
        expect(errorOf<Error>(fast)).to.be.instanceOf(ConnectionClosedError);

        await within(ended, 5000, 'the connection to give up');
        expect(attempts.map((a) => a.attempt)).to.deep.equal([1, 2, 3, 4, 5, 6]);
        attempts.forEach(({ attempt, delay }) => {
          const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** (attempt - 1));
          expect(delay, `delay of attempt ${attempt}`).to.be.within(Math.floor(base * (1 - policy.jitter)), base);
        });
        const after = await outcome(loop.sendCommand(conn, 'PING'));
        expect(!after.ok && after.error instanceof ClientStateError && /gave up reconnecting/.test(after.error.message)).to.equal(true);
      } finally {
        loop.disconnect();
        await server.stop();
      }
    });

    it('keeps commands queued across a restart, sends them in order after reconnecting', async () => {
      const server = await startRedis();
      const loop = new EventLoop({ reconnect: FAST_RECONNECT });
      try {
        const conn = loop.connect(server.url);
        await loop.sendCommand(conn, 'PING');
        server.kill('SIGKILL');
        await nextEvent(loop, 'close', (c) => c === conn);
        const queued: Future<number>[] = [];
        for (let i = 0; i < 1000; i++) queued.push(loop.sendCommand(conn, 'RPUSH', 'order', i));
        // A command sent from the 'ready' listener goes after the ones that waited.
        let fromListener: Future<number> | undefined;
        loop.once('ready', () => { fromListener = loop.sendCommand(conn, 'RPUSH', 'order', 'ready-listener'); });
        await server.restart();
        const lengths = await within(Promise.all(queued), 10_000, 'the queued commands');
        expect(lengths).to.deep.equal(queued.map((_, i) => i + 1));
        expect(await fromListener).to.equal(1001);
        expect(await loop.sendCommand(conn, 'LRANGE', 'order', 0, 2)).to.deep.equal(['0', '1', '2']);
      } finally {
        await loop.close();
        await server.stop();
      }
    });
  });

  describe('the handshake meets a server that is not ready', () => {
    it('a full server (maxclients) is retried, not taken for a bad password', async () => {
      const server = await startRedis({ args: ['--maxclients', '1'] });
      const hog = net.connect(server.port, '127.0.0.1'); // takes the only client slot
      hog.on('error', () => { /* closed below */ });
      hog.write('PING\r\n');
      await within(once(hog, 'data'), 5000, 'the hog to be served');
      const loop = new EventLoop({ reconnect: { initialDelay: 10, maxDelay: 50 } });
      try {
        const conn = loop.connect({ port: server.port, name: 'patient' });
        const queued = loop.sendCommand(conn, 'CLIENT', 'GETNAME');
        const [err] = await nextEvent(loop, 'error', (e, c) => c === conn);
        expect(err).not.to.be.instanceOf(AuthError);
        // The name goes with HELLO 3 (SETNAME), the first step the full server refuses.
        expect(err.message).to.match(/HELLO 3 on .* failed for now, will retry: ERR max number of clients reached/);
        await nextEvent(loop, 'reconnecting', (info, c) => c === conn);
        hog.destroy();
        expect(await within(queued, 5000, 'the queued command')).to.equal('patient');
      } finally {
        hog.destroy();
        await loop.close();
        await server.stop();
      }
    });

    it('LOADING in answer to AUTH is retried (fake server: a real one loads too fast to catch)', async () => {
      const fake = await startFakeServer({
        onCommand: (cmd, client) => (cmd[0] === 'AUTH' && client.index === 1 ? '-LOADING Redis is loading the dataset in memory\r\n' : undefined),
      });
      const loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20 } });
      const events = recordEvents(loop);
      try {
        const conn = loop.connect({ port: fake.port, password: 'pw', db: 1 });
        expect(await within(loop.sendCommand(conn, 'ECHO', 'after loading'), 5000, 'the queued command')).to.equal('after loading');
        const errors = events.filter(([name]) => name === 'error');
        expect(errors).to.have.length(1); // one for the attempt, not one per handshake step
        expect((errors[0]![1] as Error).message).to.match(/authentication on .* failed for now, will retry: LOADING/);
        expect(fake.connectionCount).to.equal(2);
        // HELLO 3 (unknown to the fake server) with SELECT behind it, then the RESP2 handshake.
        expect(fake.clients[1]!.commands.map((c) => c[0])).to.deep.equal(['HELLO', 'SELECT', 'AUTH', 'SELECT', 'ECHO']);
      } finally {
        loop.disconnect();
        await fake.close();
      }
    });
  });

  describe('offline queue', () => {
    let server: RedisServer;
    before(async () => { server = await startRedis(); });
    after(async () => { await server.stop(); });

    it('with offlineQueue off, commands sent before the connection is ready reject at once, unwritten', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: server.port, offlineQueue: false });
        const early = await within(outcome(loop.sendCommand(conn, 'PING')), 100, 'the early command');
        expect(early.ok).to.equal(false);
        const err = errorOf<ConnectionClosedError>(early);
        expect(err).to.be.instanceOf(ConnectionClosedError);
        expect(err.written).to.equal(false);
        expect(err.message).to.match(/offlineQueue is off/);
        await nextEvent(loop, 'ready', (c) => c === conn);
        expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
      } finally {
        await loop.close();
      }
    });

    it('rejects beyond maxOfflineQueue with a clear error and keeps the ones that fit', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: server.port, maxOfflineQueue: 3 });
        const fs = [1, 2, 3, 4, 5].map((i) => loop.sendCommand(conn, 'ECHO', String(i)));
        const results = await within(Promise.all(fs.map(outcome)), 5000, 'the queued commands');
        expect(results.slice(0, 3)).to.deep.equal([1, 2, 3].map((i) => ({ ok: true, value: String(i) })));
        for (const r of results.slice(3)) {
          expect(r.ok).to.equal(false);
          const err = errorOf<Error>(r);
          expect(err).to.be.instanceOf(ClientStateError);
          expect(err.message).to.match(/offline queue .* is full \(maxOfflineQueue 3\)/);
        }
      } finally {
        await loop.close();
      }
    });
  });

  it('backoffDelay: exponential, capped at maxDelay, jitter only shortens', () => {
    const p = { ...DEFAULT_RECONNECT, initialDelay: 100, factor: 3, maxDelay: 1000, jitter: 0 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(p, n))).to.deep.equal([100, 300, 900, 1000, 1000]);
    const jittered = { ...p, jitter: 0.5 };
    const samples = Array.from({ length: 1000 }, () => backoffDelay(jittered, 2));
    expect(Math.min(...samples)).to.be.at.least(150);
    expect(Math.max(...samples)).to.be.at.most(300);
    expect(new Set(samples).size, 'jitter spreads the delays').to.be.greaterThan(50);
  });
});
