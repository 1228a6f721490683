// Pub/sub on a server: order and binary payloads, events and for await, add/remove, a server
// killed and restarted under a subscription, backpressure, and ordinary commands alongside.
import { expect } from 'chai';
import { ConfigError, Future, type EventLoop, type Connection, type PubSubMessage, type Subscription } from '../lib/index.js';
import type { RedisServer } from '../harness/index.js';
import { expectQuietLoopClose, waitUntil, within } from './support/helpers.js';
import { serverAndLoopPerTest } from './support/fixtures.js';

function onceEvent(sub: Subscription, event: string, ms = 15_000): Promise<unknown[]> {
  return within(new Promise<unknown[]>((resolve) => sub.once(event, (...args: unknown[]) => resolve(args))), ms, `'${event}' on the subscription`);
}

describe('pub/sub on a server', function () {
  this.timeout(120_000);
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  serverAndLoopPerTest((f) => ({ server, loop, conn } = f), { flush: false });

  it('loop.close() right after subscribe() (nothing confirmed yet): close resolves, ready rejects, nothing thrown', async () => {
    const sub = loop.subscribe(conn, ['news']);
    const errors: Error[] = [];
    sub.on('error', (e: Error) => errors.push(e));
    const ready = sub.ready.then(() => 'ready', (e: Error) => e.message);
    await within(loop.close(), 10_000, 'loop.close()');
    expect(await ready).to.match(/closed before the server confirmed/);
    expect(errors).to.deep.equal([]);
  });

  it('loop.close() with a subscription still open ends it quietly: close resolves, for await ends, no error', async () => {
    const sub = loop.subscribe(conn, ['news'], { patterns: ['n*'] });
    await expectQuietLoopClose(loop, sub);
  });

  it('delivers 100k binary messages in the order they were published', async () => {
    const n = 100_000;
    const sub = loop.subscribe(conn, ['bin'], { returnBuffers: true });
    const got: Buffer[] = [];
    const all = new Promise<void>((resolve) => sub.on('message', (channel: Buffer, message: Buffer) => {
      expect(channel.toString()).to.equal('bin');
      got.push(message);
      if (got.length === n) resolve();
    }));
    await sub.ready;
    const payload = (i: number) => {
      const b = Buffer.alloc(12);
      b.writeUInt32BE(i, 0);
      b.set([0x00, 0xff, 0x0d, 0x0a, 0xc3, 0x28, 0x80, 0x7f], 4); // NUL, CRLF, invalid UTF-8
      return b;
    };
    for (let i = 0; i < n; i += 5000) {
      const batch: Future<number>[] = [];
      for (let j = i; j < i + 5000; j++) batch.push(loop.sendCommand(conn, 'PUBLISH', 'bin', payload(j)));
      const receivers = await Future.all(batch);
      expect(receivers.every((r) => r === 1)).to.equal(true);
    }
    await within(all, 60_000, '100k messages');
    for (let i = 0; i < n; i++) {
      if (!got[i]!.equals(payload(i))) expect.fail(`message ${i} is ${got[i]!.toString('hex')}, expected ${payload(i).toString('hex')}`);
    }
    await sub.close();
    expect(sub.connections.every((c) => c.state === 'closed')).to.equal(true);
  });

  it('channels, patterns and sharded channels through for await, with add() and remove()', async () => {
    const sub = loop.subscribe(conn, ['a'], { patterns: ['log.*'], sharded: ['s{1}'] });
    await sub.ready;
    const received: PubSubMessage[] = [];
    const reading = (async () => {
      for await (const m of sub) {
        received.push(m);
        if (m.message === 'stop') break;
      }
    })();
    await loop.sendCommand(conn, 'PUBLISH', 'a', 'one');
    await loop.sendCommand(conn, 'PUBLISH', 'log.x', 'two');
    await loop.sendCommand(conn, 'SPUBLISH', 's{1}', 'three');
    await sub.add(['b']);
    expect(await loop.sendCommand(conn, 'PUBLISH', 'b', 'four')).to.equal(1);
    await sub.remove(['a']);
    expect(await loop.sendCommand(conn, 'PUBLISH', 'a', 'lost')).to.equal(0);
    await sub.remove([], { patterns: ['log.*'] });
    expect(await loop.sendCommand(conn, 'PUBLISH', 'log.y', 'lost')).to.equal(0);
    await loop.sendCommand(conn, 'PUBLISH', 'b', 'stop');
    await within(reading, 10_000, 'the iterator to stop');
    expect(received).to.deep.equal([
      { kind: 'message', channel: 'a', message: 'one' },
      { kind: 'pmessage', channel: 'log.x', message: 'two', pattern: 'log.*' },
      { kind: 'smessage', channel: 's{1}', message: 'three' },
      { kind: 'message', channel: 'b', message: 'four' },
      { kind: 'message', channel: 'b', message: 'stop' },
    ]);
    await sub.close();
    const after = await loop.sendCommand(conn, 'PUBSUB', 'NUMSUB', 'b');
    expect(after).to.deep.equal(['b', 0]);
  });

  it('for await holds only the messages read while it runs; listeners get every one (docs/pubsub.md)', async () => {
    const sub = loop.subscribe(conn, ['a']);
    await sub.ready;
    const heard: string[] = [];
    sub.on('message', (_channel, message) => heard.push(message as string));
    await loop.sendCommand(conn, 'PUBLISH', 'a', 'before');
    await waitUntil(() => heard.length === 1, { timeout: 5000, what: 'the first message' });
    expect(sub.queued).to.equal(0); // nobody iterates: nothing is held for a later for await
    const received: string[] = [];
    const reading = (async () => {
      for await (const m of sub) {
        received.push(m.message as string);
        if (m.message === 'stop') break;
      }
    })();
    await loop.sendCommand(conn, 'PUBLISH', 'a', 'during');
    await loop.sendCommand(conn, 'PUBLISH', 'a', 'stop');
    await within(reading, 10_000, 'the iterator to stop');
    expect(received).to.deep.equal(['during', 'stop']);
    expect(heard).to.deep.equal(['before', 'during', 'stop']);
    await sub.close();
  });

  it('comes back by itself after the server is SIGKILLed and restarted, and receives again', async () => {
    const sub = loop.subscribe(conn, ['k'], { patterns: ['kp.*'] });
    const messages: string[] = [];
    sub.on('message', (_c: string, m: string) => messages.push(m));
    sub.on('pmessage', (_p: string, _c: string, m: string) => messages.push(m));
    await sub.ready;
    await loop.sendCommand(conn, 'PUBLISH', 'k', 'before');
    const resubscribed = onceEvent(sub, 'resubscribed', 30_000);
    server.kill('SIGKILL');
    await server.waitExit();
    await server.restart();
    await resubscribed;
    expect(await loop.sendCommand(conn, 'PUBLISH', 'k', 'after')).to.equal(1);
    expect(await loop.sendCommand(conn, 'PUBLISH', 'kp.1', 'after-p')).to.equal(1);
    await waitUntil(() => messages.length >= 3, { timeout: 5000, what: 'messages after the restart' });
    expect(messages).to.deep.equal(['before', 'after', 'after-p']);
    expect(sub.connections[0]!.stats.reconnects).to.be.greaterThan(0);
    await sub.close();
  });

  it('stops reading past the high-water mark when for await falls behind, and loses nothing', async () => {
    const hwm = 200;
    const n = 30_000;
    const sub = loop.subscribe(conn, ['slow'], { highWaterMark: hwm });
    await sub.ready;
    const it = sub[Symbol.asyncIterator]();
    const first = it.next();
    await loop.sendCommand(conn, 'PUBLISH', 'slow', 'm0');
    expect((await first).value).to.include({ message: 'm0' });
    // The consumer stops reading. The publisher sends n messages of 100 bytes.
    const body = 'x'.repeat(100);
    const sends: Future<number>[] = [];
    for (let i = 1; i <= n; i++) sends.push(loop.sendCommand(conn, 'PUBLISH', 'slow', `m${i}:${body}`));
    await Future.all(sends);
    await new Promise((r) => setTimeout(r, 300));
    let maxQueued = sub.queued;
    expect(sub.readingPaused).to.equal(true);
    // What one socket read carries past the mark is bounded by one read (64 KiB here), not by n.
    expect(sub.queued).to.be.lessThan(hwm + 65536 / 100);
    // The rest waits in the server's output buffer for this client.
    const clients = String(await loop.sendCommand(conn, 'CLIENT', 'LIST', 'TYPE', 'pubsub'));
    expect(clients).to.match(/omem=[1-9]/);
    for (let i = 1; i <= n; i++) {
      const r = await it.next();
      maxQueued = Math.max(maxQueued, sub.queued);
      if ((r.value as PubSubMessage).message !== `m${i}:${body}`) expect.fail(`message ${i} out of order: ${String((r.value as PubSubMessage).message).slice(0, 20)}`);
    }
    expect(maxQueued).to.be.lessThan(hwm + 65536 / 100);
    expect(sub.readingPaused).to.equal(false);
    await it.return!();
    await sub.close();
  });

  it('runs next to ordinary pipelined commands of the same loop and connection', async () => {
    const sub = loop.subscribe(conn, ['mix']);
    let count = 0;
    sub.on('message', () => { count++; });
    await sub.ready;
    const futures: Future<unknown>[] = [];
    for (let i = 0; i < 5000; i++) {
      futures.push(loop.sendCommand(conn, 'SET', `mix:${i}`, String(i)));
      futures.push(loop.sendCommand(conn, 'PUBLISH', 'mix', String(i)));
      futures.push(loop.sendCommand(conn, 'GET', `mix:${i}`));
    }
    const replies = await Future.all(futures);
    for (let i = 0; i < 5000; i++) {
      expect(replies[3 * i]).to.equal('OK');
      expect(replies[3 * i + 1]).to.equal(1);
      expect(replies[3 * i + 2]).to.equal(String(i));
    }
    await waitUntil(() => count >= 5000, { timeout: 10_000, what: 'every message' });
    expect(count).to.equal(5000);
    // The shared command connection never saw a push message: no protocol error, no reconnect.
    expect(conn.stats.reconnects).to.equal(0);
    await sub.close();
  });

  it('refuses bad input and a closed subscription with clear errors', async () => {
    expect(() => loop.subscribe(conn, [])).to.throw(TypeError, /at least one channel/);
    expect(() => loop.subscribe(conn, [5 as never])).to.throw(TypeError, /channels\[0\] is number/);
    expect(() => loop.subscribe(conn, 'news' as never)).to.throw(TypeError, /must be an array/);
    expect(() => loop.subscribe(conn, [''])).to.throw(TypeError, /empty string/);
    expect(() => loop.subscribe(conn, ['a'], { patterns: 'x' as never })).to.throw(TypeError, /patterns must be an array/);
    expect(() => loop.subscribe(conn, ['a'], { highWaterMark: 0 })).to.throw(ConfigError, /highWaterMark/);
    expect(() => loop.subscribe(conn, ['a'], { bogus: 1 } as never)).to.throw(ConfigError, /unknown option "bogus"/);
    expect(() => loop.subscribe(conn, [Buffer.from([0xff])])).to.throw(TypeError, /returnBuffers: true/);
    expect(() => loop.subscribe({} as never, ['a'])).to.throw(TypeError, /target must be/);
    const sub = loop.subscribe(conn, ['ok']);
    await sub.ready;
    expect(() => sub[Symbol.asyncIterator]()).to.not.throw();
    expect(() => sub[Symbol.asyncIterator]()).to.throw(TypeError, /already being iterated/);
    await sub.close();
    let err: Error | undefined;
    try { await sub.add(['more']); } catch (e) { err = e as Error; }
    expect(err?.name).to.equal('ClientStateError');
    expect(err?.message).to.match(/subscription is closed/);
    // The refusal on ordinary connections stays.
    let refused: Error | undefined;
    try { await loop.sendCommand(conn, 'SUBSCRIBE', 'x'); } catch (e) { refused = e as Error; }
    expect(refused).to.be.instanceOf(TypeError);
  });
});
