// The core promise: one loop, many shards, a future per command, replies strictly in order.
import { expect } from 'chai';
import { EventLoop, Future, ReplyError, type Connection } from '../lib/index.js';
import { startShards, rawCommand, type RedisServer } from '../harness/index.js';
import { rejection } from './support/helpers.js';

describe('core: EventLoop over two shards', function () {
  let shards: RedisServer[];
  let loop: EventLoop;
  let a: Connection;
  let b: Connection;

  before(async () => {
    shards = await startShards(2);
  });
  after(async () => {
    await Promise.all(shards.map((s) => s.stop()));
  });
  beforeEach(() => {
    loop = new EventLoop();
    a = loop.connect(shards[0]!.url);
    b = loop.connect({ host: '127.0.0.1', port: shards[1]!.port });
  });
  afterEach(async () => {
    await loop.close();
  });

  it('runs the Pypredis example: two shards, selective awaiting', async () => {
    await Promise.all([
      loop.sendCommand(a, 'SADD', 'set1', 'x', 'y', 'z'),
      loop.sendCommand(a, 'SADD', 'set2', 'y', 'z'),
      loop.sendCommand(b, 'SADD', 'set3', '1', '2'),
      loop.sendCommand(b, 'SADD', 'set4', '2'),
    ]);
    const f1 = loop.sendCommand<string[]>(a, 'SINTER', 'set1', 'set2');
    const f2 = loop.sendCommand<string[]>(b, 'SINTER', 'set3', 'set4');
    loop.sendCommand(a, 'INCR', 'hits'); // never awaited
    expect((await f1).sort()).to.deep.equal(['y', 'z']);
    expect(await f2).to.deep.equal(['2']);
    expect(await loop.sendCommand(a, 'GET', 'hits')).to.equal('1');
  });

  it('hands 100k commands over 2 shards back in order, each to its own future', async () => {
    const n = 100_000;
    const futures: Future<string>[] = [];
    for (let i = 0; i < n; i++) futures.push(loop.sendCommand(i % 2 === 0 ? a : b, 'ECHO', `v${i}`));
    const replies = await Promise.all(futures);
    for (let i = 0; i < n; i++) if (replies[i] !== `v${i}`) expect.fail(`reply ${i} was ${replies[i]}`);
    expect(a.stats.repliesReceived + b.stats.repliesReceived).to.equal(n);
    expect(a.stats.pending).to.equal(0);
  });

  it('lets an error reply in the middle of 10k pipelined commands reject only its own future', async () => {
    await loop.sendCommand(a, 'SET', 'str', 'not a number');
    const futures: Future<unknown>[] = [];
    for (let i = 0; i < 10_000; i++) {
      futures.push(i === 5000 ? loop.sendCommand(a, 'INCR', 'str') : loop.sendCommand(a, 'ECHO', String(i)));
    }
    const results = await Promise.allSettled(futures);
    results.forEach((r, i) => {
      if (i === 5000) {
        expect(r.status).to.equal('rejected');
        const err = (r as PromiseRejectedResult).reason as ReplyError;
        expect(err).to.be.instanceOf(ReplyError);
        expect(err.name).to.equal('ReplyError');
        expect(err.command).to.equal('INCR');
        expect(err.message).to.match(/not an integer/);
      } else if (r.status !== 'fulfilled' || r.value !== String(i)) {
        expect.fail(`command ${i} got ${JSON.stringify(r)}`);
      }
    });
  });

  it('round-trips binary and unicode arguments exactly', async () => {
    const values: Array<string | Buffer> = [
      'line\r\nbreak', 'nul\0inside', 'héllo wörld ✓ 日本語 🚀', '', '$3\r\nfoo\r\n', '*2\r\n',
      Buffer.from([0, 1, 2, 13, 10, 255, 254, 0]), Buffer.alloc(0), Buffer.from('🚀 in a buffer'),
    ];
    for (const [i, v] of values.entries()) {
      loop.sendCommand(a, 'SET', `bin:${i}`, v);
      const back = await loop.send<Buffer>(a, ['GET', `bin:${i}`], { returnBuffers: true });
      expect(Buffer.compare(back, Buffer.isBuffer(v) ? v : Buffer.from(v)), `value ${i}`).to.equal(0);
      if (typeof v === 'string') expect(await loop.sendCommand(a, 'GET', `bin:${i}`)).to.equal(v);
    }
    const u8 = new Uint8Array([9, 8, 7, 0, 13, 10]);
    await loop.sendCommand(a, 'SET', 'u8', u8.subarray(1, 5));
    expect([...(await loop.send<Buffer>(a, ['GET', 'u8'], { returnBuffers: true }))]).to.deep.equal([8, 7, 0, 13]);
    // The raw client, independent of redloop's encoder, sees the same bytes.
    expect(await rawCommand(shards[0]!.endpoint, 'STRLEN', 'bin:2')).to.equal(Buffer.byteLength(values[2] as string));
  });

  it('accepts numbers and bigints as arguments', async () => {
    await loop.sendCommand(a, 'SET', 'n', 42);
    expect(await loop.sendCommand(a, 'INCRBY', 'n', 9007199254740000n)).to.equal(9007199254740042);
    await loop.sendCommand(a, 'SET', 'f', -1.5);
    expect(await loop.sendCommand(a, 'GET', 'f')).to.equal('-1.5');
  });

  it('switches between Buffer and string replies per command without mixing them up', async () => {
    await loop.sendCommand(a, 'RPUSH', 'l', 'a', 'b');
    const fs = [
      loop.sendCommand(a, 'LRANGE', 'l', 0, -1),
      loop.send(a, ['LRANGE', 'l', 0, -1], { returnBuffers: true }),
      loop.sendCommand(a, 'LRANGE', 'l', 0, -1),
      loop.send(a, ['GET', 'nope'], { returnBuffers: true }),
      loop.send(a, ['PING'], { returnBuffers: true }),
      loop.sendCommand(a, 'PING'),
    ];
    const [s1, b1, s2, nil, bping, sping] = await Promise.all(fs);
    expect(s1).to.deep.equal(['a', 'b']);
    expect((b1 as Buffer[]).map((x) => Buffer.isBuffer(x))).to.deep.equal([true, true]);
    expect(s2).to.deep.equal(['a', 'b']);
    expect(nil).to.equal(null);
    expect(Buffer.isBuffer(bping)).to.equal(true);
    expect(sping).to.equal('PONG');
  });

  it('decodes Buffers for a whole connection with returnBuffers', async () => {
    const c = loop.connect({ port: shards[0]!.port, returnBuffers: true });
    await loop.sendCommand(c, 'SET', 'buf', 'abc');
    const v = await loop.sendCommand(c, 'GET', 'buf');
    expect(Buffer.isBuffer(v)).to.equal(true);
    expect(await loop.send(c, ['GET', 'buf'], { returnBuffers: false })).to.equal('abc');
  });

  it('writes a synchronous run of fewer than 256 commands in a single write, and a longer one in slices as it is made', async () => {
    await loop.sendCommand(a, 'PING');
    let before = a.stats.writes;
    const futures = [];
    for (let i = 0; i < 254; i++) futures.push(loop.sendCommand(a, 'ECHO', i));
    futures.push(loop.sendCommand(a, 'SET', 'withbuf', Buffer.from('x')));
    expect(a.stats.writes - before, 'nothing written before the tick ends').to.equal(0);
    await Promise.all(futures);
    expect(a.stats.writes - before).to.equal(1);

    before = a.stats.writes;
    const long = [];
    for (let i = 0; i < 600; i++) long.push(loop.sendCommand(a, 'ECHO', i));
    // 256 and 512 go out at once on an idle socket (a slice waits for 4096 while one is queued).
    const duringTick = a.stats.writes - before;
    expect(duringTick).to.be.within(1, 2);
    expect(await Promise.all(long)).to.deep.equal(Array.from({ length: 600 }, (_, i) => String(i)));
    expect(a.stats.writes - before).to.equal(duringTick + 1);
  });

  it('queues commands sent before the socket is ready and sends them in order', async () => {
    const c = loop.connect(shards[1]!.url);
    expect(c.state).to.equal('connecting');
    const futures = [];
    for (let i = 0; i < 100; i++) futures.push(loop.sendCommand(c, 'RPUSH', 'offline', i));
    expect(c.stats.offlineQueued).to.equal(100);
    expect(await Promise.all(futures)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await loop.sendCommand(c, 'LRANGE', 'offline', 0, -1)).to.deep.equal(Array.from({ length: 100 }, (_, i) => String(i)));
  });

  it('makes no Promise until a future is awaited, and works with then/catch/finally/Promise.all', async () => {
    const f = loop.sendCommand(a, 'PING');
    expect(f.observed).to.equal(false);
    expect(await f).to.equal('PONG');
    expect(f.observed).to.equal(true);
    const g = loop.sendCommand(a, 'ECHO', 'x');
    await loop.sendCommand(a, 'PING');
    expect(g.settled).to.equal(true);
    expect(g.observed).to.equal(false);
    expect(await g.then((v) => v + '!')).to.equal('x!');
    let fin = false;
    const caught = await loop.sendCommand(a, 'NOSUCHCOMMAND').catch((e: Error) => e.name).finally(() => { fin = true; });
    expect(caught).to.equal('ReplyError');
    expect(fin).to.equal(true);
    expect(Object.prototype.toString.call(g)).to.equal('[object Future]');
  });

  it('Future.all awaits a batch with one Promise: replies in order, first failure rejects', async () => {
    const futures = [];
    for (let i = 0; i < 1000; i++) futures.push(loop.sendCommand<string>(i % 2 ? a : b, 'ECHO', `e${i}`));
    const values = await Future.all(futures);
    expect(values).to.deep.equal(Array.from({ length: 1000 }, (_, i) => `e${i}`));
    expect(futures[10]!.value).to.equal('e10');
    expect(futures.every((f) => f.observed)).to.equal(true);
    expect(await Future.all([])).to.deep.equal([]);

    let reported = 0;
    loop.on('unobservedError', () => reported++);
    await loop.sendCommand(a, 'SET', 'str4', 'x');
    const mixed = [loop.sendCommand(a, 'PING'), loop.sendCommand(a, 'INCR', 'str4'), loop.sendCommand(a, 'INCR', 'str4')];
    const err = await rejection(Future.all(mixed));
    expect((err as ReplyError).command).to.equal('INCR');
    expect(mixed[0]!.value).to.equal('PONG');
    expect(mixed[2]!.error?.name).to.equal('ReplyError');
    // A future already in one batch can join another; settled futures count at once.
    const shared = loop.sendCommand(a, 'ECHO', 'shared');
    const [x, y] = await Promise.all([Future.all([shared]), Future.all([shared, mixed[0]!])]);
    expect(x).to.deep.equal(['shared']);
    expect(y).to.deep.equal(['shared', 'PONG']);
    await new Promise((r) => setImmediate(r));
    expect(reported).to.equal(0); // rejections inside a batch count as observed
  });

  it('never raises unhandledRejection for failing futures nobody awaits; counts and emits them', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    const seen: Array<[string, string]> = [];
    loop.on('unobservedError', (err, command) => seen.push([err.name, command]));
    try {
      await loop.sendCommand(a, 'SET', 'str2', 'x');
      for (let i = 0; i < 50; i++) loop.sendCommand(a, 'INCR', 'str2');
      loop.sendCommand(a, 'SET', undefined as never, 'x');
      await loop.sendCommand(a, 'PING');
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).to.deep.equal([]);
    expect(loop.unobservedErrors).to.equal(51);
    expect(seen.filter(([n, c]) => n === 'ReplyError' && c === 'INCR')).to.have.length(50);
    expect(seen).to.deep.include(['TypeError', 'SET']);
  });

  it('does not report a failed future that is awaited a little later', async () => {
    let reported = 0;
    loop.on('unobservedError', () => reported++);
    await loop.sendCommand(a, 'SET', 'str3', 'x');
    const futures = [loop.sendCommand(a, 'PING'), loop.sendCommand(a, 'INCR', 'str3')];
    for (const f of futures) await f.then(() => undefined, () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(reported).to.equal(0);
  });

  it('does not report a future that had already failed when Future.all took it', async () => {
    let reported = 0;
    loop.on('unobservedError', () => reported++);
    await loop.sendCommand(a, 'SET', 'str5', 'x');
    const incr = loop.sendCommand(a, 'INCR', 'str5');
    await loop.sendCommand(a, 'PING'); // the INCR's error reply has been read by now
    expect(incr.settled).to.equal(true);
    const badArg = loop.sendCommand(a, 'SET', 'k', undefined as never); // rejected at once
    const errs = await Promise.all([Future.all([badArg]), Future.all([incr])].map((p) => rejection(p)));
    expect(errs.map((e) => e?.name)).to.deep.equal(['TypeError', 'ReplyError']);
    await new Promise((r) => setImmediate(r));
    expect(reported).to.equal(0);
    expect(loop.unobservedErrors).to.equal(0);
  });

  it('rejects bad arguments with a TypeError naming the position, and writes nothing for them', async () => {
    await loop.sendCommand(a, 'PING');
    const sent = a.stats.commandsSent;
    const bytes = a.stats.bytesWritten;
    const bad: unknown[] = [undefined, null, {}, [1, 2], NaN, Infinity, () => 1, Symbol('s'), true];
    for (const value of bad) {
      const err = await rejection(loop.sendCommand(a, 'SET', 'key', value as never));
      expect(err, String(value)).to.be.instanceOf(TypeError);
      expect(err!.message).to.match(/^SET: argument 2 is /);
    }
    const nameErr = await rejection(loop.sendCommand(a, '' as string));
    expect(nameErr).to.be.instanceOf(TypeError);
    const targetErr = await rejection(loop.sendCommand({} as never, 'PING'));
    expect(targetErr?.message).to.match(/target must be a Connection/);
    await new Promise((r) => setImmediate(r));
    expect(a.stats.commandsSent).to.equal(sent);
    expect(a.stats.bytesWritten).to.equal(bytes);
    // Neighbours are unaffected.
    const [ok, , ok2] = await Promise.allSettled([
      loop.sendCommand(a, 'ECHO', 'before'), loop.sendCommand(a, 'ECHO', undefined as never), loop.sendCommand(a, 'ECHO', 'after'),
    ]);
    expect([ok, ok2].map((r) => (r as PromiseFulfilledResult<string>).value)).to.deep.equal(['before', 'after']);
    expect(await rawCommand(shards[0]!.endpoint, 'EXISTS', 'key')).to.equal(0);
  });

  it('reports per-connection stats', async () => {
    const c = loop.connect(shards[0]!.url);
    await Promise.all([loop.sendCommand(c, 'PING'), loop.sendCommand(c, 'ECHO', 'abc')]);
    const s = c.stats;
    expect(s.commandsSent).to.equal(2);
    expect(s.repliesReceived).to.equal(2);
    expect(s.pending).to.equal(0);
    // The socket's bytes: the handshake's HELLO 3 too.
    expect(s.bytesWritten).to.equal('*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n'.length);
  });
});

describe('core: handshake', function () {
  let servers: RedisServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('AUTHs with requirepass, SELECTs and SETNAMEs before any user command', async () => {
    const [server] = await startShards(1, { args: ['--requirepass', 's3cret pass'] });
    servers.push(server!);
    const loop = new EventLoop();
    const conn = loop.connect(`redis://:${encodeURIComponent('s3cret pass')}@127.0.0.1:${server!.port}/3?name=redloop-test`);
    const first = loop.sendCommand<string>(conn, 'CLIENT', 'INFO');
    const info = await first;
    expect(info).to.match(/ name=redloop-test /);
    expect(info).to.match(/ db=3 /);
    const list = await rawCommand(server!.endpoint, 'CLIENT', 'LIST') as string;
    expect(list).to.match(/name=redloop-test .* db=3 /);
    await loop.close();
  });

  it('AUTHs as an ACL user with username and password', async () => {
    const [server] = await startShards(1);
    servers.push(server!);
    await rawCommand(server!.endpoint, 'ACL', 'SETUSER', 'app', 'on', '>apppass', '~app:*', '+@all');
    const loop = new EventLoop();
    const conn = loop.connect({ port: server!.port, username: 'app', password: 'apppass', name: 'acl-client' });
    expect(await loop.sendCommand(conn, 'ACL', 'WHOAMI')).to.equal('app');
    expect(await loop.sendCommand(conn, 'SET', 'app:1', 'ok')).to.equal('OK');
    const denied = await rejection<ReplyError>(loop.sendCommand(conn, 'SET', 'other', 'x'));
    expect(denied?.code).to.equal('NOPERM');
    const list = await rawCommand(server!.endpoint, 'CLIENT', 'LIST') as string;
    expect(list).to.match(/name=acl-client .*user=app/);
    await loop.close();
  });
});

describe('core: close and disconnect', function () {
  let server: RedisServer;
  before(async () => {
    [server] = (await startShards(1)) as [RedisServer];
  });
  after(async () => {
    await server.stop();
  });

  it('close() waits for what is in flight, then QUITs, leaving no socket open', async () => {
    const loop = new EventLoop();
    const conn = loop.connect(server.url);
    const futures = [];
    for (let i = 0; i < 1000; i++) futures.push(loop.sendCommand(conn, 'ECHO', i));
    const slow = loop.sendCommand(conn, 'BLPOP', 'nothing-here', '0.2'); // answers null after 200 ms
    const closed = loop.close();
    const late = await rejection(loop.sendCommand(conn, 'PING'));
    expect(late?.name).to.equal('ClientStateError');
    await closed;
    expect(await slow).to.equal(null);
    expect((await Promise.all(futures)).length).to.equal(1000);
    expect(conn.state).to.equal('closed');
    expect(loop.connections).to.have.length(0);
    // QUIT is the client's own, like the handshake: in neither count.
    expect(conn.stats.commandsSent).to.equal(1001);
    expect(conn.stats.repliesReceived).to.equal(1001);
    const clients = await rawCommand(server.endpoint, 'CLIENT', 'LIST') as string;
    expect(clients.trim().split('\n')).to.have.length(1); // only the raw client itself
  });

  it('disconnect() rejects pending futures at once with a clear error', async () => {
    const loop = new EventLoop();
    const conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'PING');
    const slow = loop.sendCommand(conn, 'BLPOP', 'nothing-here', '5');
    const queued = loop.sendCommand(conn, 'PING');
    await new Promise((r) => setImmediate(r));
    loop.disconnect();
    const errs = await Promise.all([slow, queued].map((f) => rejection(f)));
    for (const e of errs) {
      expect(e?.name).to.equal('ConnectionClosedError');
      expect(e?.message).to.match(/disconnect\(\) was called/);
    }
    await conn.whenClosed();
    expect(conn.state).to.equal('closed');
    const after = await rejection(loop.sendCommand(conn, 'PING'));
    expect(after?.name).to.equal('ClientStateError');
  });

  it('close() of a loop that never connected anything resolves', async () => {
    const loop = new EventLoop();
    await loop.close();
    expect(() => loop.connect(server.url)).to.throw(/closed/);
  });
});

describe('core: unix sockets', function () {
  it('connects with a unix:// URL', async () => {
    const sock = `/tmp/redloop-test-${process.pid}.sock`;
    const [server] = await startShards(1, { args: ['--unixsocket', sock, '--unixsocketperm', '700'] });
    try {
      const loop = new EventLoop();
      const conn = loop.connect(`unix://${sock}?db=2`);
      expect(conn.address).to.equal(sock);
      await loop.sendCommand(conn, 'SET', 'via', 'unix');
      expect(await rawCommand(server!.endpoint, 'SELECT', '2')).to.equal('OK');
      expect(await loop.sendCommand(conn, 'CLIENT', 'INFO')).to.match(/ db=2 /);
      await loop.close();
    } finally {
      await server!.stop();
    }
  });
});
