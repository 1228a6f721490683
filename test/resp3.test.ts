// RESP3 on the wire: the decoder's RESP3 types (RESP2 shapes by default, native with resp3),
// wherever a chunk ends; push frames never taken for a reply; resp3 per connection and per
// command against a real server; invalidation pushes between replies leave the FIFO exact.
import { expect } from 'chai';
import { AttributedReply, EventLoop, Future, VerbatimString, type Connection } from '../lib/index.js';
import { ReplyDecoder, type ReplyHandler } from '../lib/protocol/decoder.js';
import { kAddPushListener } from '../lib/base/internal.js';
import { ProtocolError, ReplyError } from '../lib/base/errors.js';
import { startRedis, type RedisServer } from '../harness/index.js';
import { startFakeServer, type FakeClient } from '../harness/fake-server.js';
import { AuthError } from '../lib/base/errors.js';

class Collector implements ReplyHandler {
  events: unknown[] = [];
  onReply(reply: unknown): void { this.events.push(reply); }
  onErrorReply(message: string): void { this.events.push(`ERROR ${message}`); }
  onProtocolError(err: ProtocolError): void { this.events.push(err); }
  nestedError(message: string): Error { return new ReplyError(message, 'X'); }
  onPush(frame: unknown[]): void { this.events.push({ push: frame }); }
}

function decode(bytes: string | Buffer, cuts: number[], mode: { buffers?: boolean; resp3?: boolean; bigInt?: boolean } = {}): unknown[] {
  const all = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const c = new Collector();
  const d = new ReplyDecoder(c, mode.buffers ?? false, mode.bigInt ?? false, mode.resp3 ?? false);
  let at = 0;
  for (const cut of [...cuts, all.length]) {
    if (cut > at) d.feed(Buffer.from(all.subarray(at, cut)));
    at = Math.max(at, cut);
  }
  return c.events;
}

/** Every way of cutting `bytes` in two and in three (every pair of cuts for short inputs). */
function* cutsOf(n: number): Generator<number[]> {
  yield [];
  for (let i = 1; i < n; i++) yield [i];
  if (n <= 120) for (let i = 1; i < n; i++) for (let j = i + 1; j < n; j++) yield [i, j];
}

const STREAM = [
  '%2\r\n+a\r\n:1\r\n$1\r\nb\r\n,2.5\r\n', // map
  '~3\r\n+x\r\n+y\r\n+x\r\n', // set (the server never repeats; a JS Set keeps one)
  ',inf\r\n', ',-inf\r\n', ',nan\r\n', ',1.5e+20\r\n', ',-0.25\r\n',
  '#t\r\n', '#f\r\n', '_\r\n', '(3492890328409238509324850943850943825024385\r\n',
  '=15\r\ntxt:Some string\r\n', '!21\r\nSYNTAX invalid syntax\r\n',
  '>3\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n:7\r\n', // a push between replies
  '*3\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n$2\r\nv2\r\n%1\r\n+k\r\n~1\r\n#t\r\n', // an attribute inside an array
  '|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.5\r\n$4\r\nreal\r\n', // an attribute before a top-level reply
  '*2\r\n!3\r\nE x\r\n_\r\n', // a blob error nested
  '%0\r\n', '~0\r\n', '*0\r\n',
].join('');

describe('RESP3 decoder', () => {
  it('gives RESP2 shapes by default, wherever the chunks end', () => {
    const expected = [
      ['a', 1, 'b', '2.5'], ['x', 'y', 'x'], 'inf', '-inf', 'nan', '1.5e+20', '-0.25', 1, 0, null,
      '3492890328409238509324850943850943825024385', 'Some string', 'ERROR SYNTAX invalid syntax',
      { push: ['invalidate', ['key'], 7] }, [1, 'v2', ['k', [1]]], 'real', [new ReplyError('E x', 'X'), null], [], [], [],
    ];
    for (const cuts of cutsOf(STREAM.length)) {
      const got = decode(STREAM, cuts);
      expect(got, `cuts ${cuts.join(',')}`).to.deep.equal(expected);
    }
  });

  it('gives native types with resp3, wherever the chunks end', () => {
    for (const cuts of cutsOf(STREAM.length)) {
      const got = decode(STREAM, cuts, { resp3: true });
      const at = `cuts ${cuts.join(',')}`;
      expect(got[0], at).to.deep.equal(new Map<unknown, unknown>([['a', 1], ['b', 2.5]]));
      expect(got[1], at).to.deep.equal(new Set(['x', 'y']));
      expect(got.slice(2, 10), at).to.deep.equal([Infinity, -Infinity, NaN, 1.5e20, -0.25, true, false, null]);
      expect(got[10], at).to.equal(3492890328409238509324850943850943825024385n);
      expect(got[11], at).to.be.instanceOf(VerbatimString);
      expect(String(got[11]), at).to.equal('Some string');
      expect((got[11] as VerbatimString).format, at).to.equal('txt');
      expect(got[12], at).to.equal('ERROR SYNTAX invalid syntax');
      // A push is decoded in the push mode (RESP2 shapes), whatever the reply mode.
      expect(got[13], at).to.deep.equal({ push: ['invalidate', ['key'], 7] });
      expect(got[14], at).to.deep.equal([1, new AttributedReply('v2', new Map([['ttl', 3600]])), new Map([['k', new Set([true])]])]);
      expect(got[15], at).to.deep.equal(new AttributedReply('real', new Map([['key-popularity', ['a', 0.5]]])));
      expect(got.slice(17), at).to.deep.equal([new Map(), new Set(), []]);
    }
  });

  it('Map keys are any value, in the server\'s order, with no __proto__ trap', () => {
    const [m] = decode('%3\r\n$9\r\n__proto__\r\n:1\r\n$11\r\nconstructor\r\n:2\r\n$1\r\na\r\n:3\r\n', [], { resp3: true }) as [Map<string, number>];
    expect([...m.keys()]).to.deep.equal(['__proto__', 'constructor', 'a']);
    expect(m.get('__proto__')).to.equal(1);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    const [b] = decode(Buffer.from('%1\r\n$2\r\n\xff\xfe\r\n:1\r\n', 'latin1'), [], { resp3: true, buffers: true }) as [Map<Buffer, number>];
    expect([...b.keys()][0]).to.deep.equal(Buffer.from([0xff, 0xfe]));
  });

  it('with returnBuffers: doubles, big numbers and verbatim strings as Buffers by default (as RESP2 sends them)', () => {
    const got = decode(',3.25\r\n(123\r\n=7\r\ntxt:abc\r\n#t\r\n', [], { buffers: true });
    expect(got).to.deep.equal([Buffer.from('3.25'), Buffer.from('123'), Buffer.from('abc'), 1]);
    const native = decode('=7\r\nmkd:abc\r\n', [], { buffers: true, resp3: true });
    expect(native[0]).to.deep.equal(Buffer.from('abc'));
    expect((native[0] as Buffer & { format: string }).format).to.equal('mkd');
  });

  it('booleans are bigints 1n/0n with bigInt (as RESP2 integers would be)', () => {
    expect(decode('#t\r\n#f\r\n', [], { bigInt: true })).to.deep.equal([1n, 0n]);
  });

  it('a push frame waits for its end before a new reply mode applies (setMode mid-push)', () => {
    const c = new Collector();
    const d = new ReplyDecoder(c, false, false, false);
    d.feed(Buffer.from('>2\r\n$7\r\nmessage\r\n'));
    d.setMode(true, false, true); // the next reply wants Buffers and native types
    d.feed(Buffer.from('$2\r\nhi\r\n%1\r\n+k\r\n+v\r\n'));
    expect(c.events).to.deep.equal([{ push: ['message', 'hi'] }, new Map([[Buffer.from('k'), Buffer.from('v')]])]);
  });

  it('an unknown type byte is still a protocol error', () => {
    const got = decode('?oops\r\n', []);
    expect(got[0]).to.be.instanceOf(ProtocolError);
  });
});

describe('RESP3 on a server', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;

  before(async () => { server = await startRedis({ args: ['--enable-debug-command', 'yes'] }); });
  after(async () => { await server.stop(); });
  beforeEach(async () => {
    loop = new EventLoop();
    conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'FLUSHALL');
  });
  afterEach(async () => { await loop.close(); });

  it('speaks RESP3 by default and keeps RESP2 shapes', async () => {
    expect(conn.protocol).to.equal(3);
    loop.sendCommand(conn, 'HSET', 'h', 'a', '1', 'b', '2');
    loop.sendCommand(conn, 'ZADD', 'z', '1.5', 'm', '2', 'n');
    expect(await loop.sendCommand(conn, 'HGETALL', 'h')).to.deep.equal(['a', '1', 'b', '2']);
    expect(await loop.sendCommand(conn, 'ZSCORE', 'z', 'm')).to.equal('1.5');
    expect(await loop.sendCommand(conn, 'ZRANGE', 'z', 0, -1, 'WITHSCORES')).to.deep.equal(['m', '1.5', 'n', '2']);
  });

  it('resp3: true per command gives Map, Set, number, boolean, bigint, VerbatimString, AttributedReply', async () => {
    loop.sendCommand(conn, 'HSET', 'h', 'a', '1', '__proto__', '2');
    loop.sendCommand(conn, 'SADD', 's', 'x');
    loop.sendCommand(conn, 'ZADD', 'z', '1.5', 'm', 'inf', 'top');
    const r3 = { resp3: true };
    const [h, s, score, top, pairs, yes, big, verbatim, attrib] = await Future.all([
      loop.send(conn, ['HGETALL', 'h'], r3), loop.send(conn, ['SMEMBERS', 's'], r3), loop.send(conn, ['ZSCORE', 'z', 'm'], r3),
      loop.send(conn, ['ZSCORE', 'z', 'top'], r3), loop.send(conn, ['ZRANGE', 'z', 0, -1, 'WITHSCORES'], r3),
      loop.send(conn, ['DEBUG', 'PROTOCOL', 'true'], r3), loop.send(conn, ['DEBUG', 'PROTOCOL', 'bignum'], r3),
      loop.send(conn, ['DEBUG', 'PROTOCOL', 'verbatim'], r3), loop.send(conn, ['DEBUG', 'PROTOCOL', 'attrib'], r3),
    ]);
    expect(h).to.deep.equal(new Map([['a', '1'], ['__proto__', '2']]));
    expect(s).to.deep.equal(new Set(['x']));
    expect(score).to.equal(1.5);
    expect(top).to.equal(Infinity);
    expect(pairs).to.deep.equal([['m', 1.5], ['top', Infinity]]);
    expect(yes).to.equal(true);
    expect(typeof big).to.equal('bigint');
    expect(verbatim).to.be.instanceOf(VerbatimString);
    expect((verbatim as VerbatimString).format).to.equal('txt');
    expect(attrib).to.be.instanceOf(AttributedReply);
    expect((attrib as AttributedReply).value).to.equal('Some real reply following the attribute');
    expect((attrib as AttributedReply).attributes.get('key-popularity')).to.deep.equal(['key:123', 90]);
    // The next command, without the option, has its RESP2 shape again.
    expect(await loop.sendCommand(conn, 'HGETALL', 'h')).to.deep.equal(['a', '1', '__proto__', '2']);
  });

  it('resp3: true per connection', async () => {
    const native = loop.connect({ url: server.url, resp3: true });
    loop.sendCommand(native, 'HSET', 'h', 'a', '1');
    expect(await loop.sendCommand(native, 'HGETALL', 'h')).to.deep.equal(new Map([['a', '1']]));
    expect(await loop.send(native, ['HGETALL', 'h'], { resp3: false })).to.deep.equal(['a', '1']);
  });

  it('a push frame is never a reply: DEBUG PROTOCOL push goes to the listeners, the string after it to the command', async () => {
    const pushes: unknown[] = [];
    const remove = conn[kAddPushListener]((frame) => pushes.push(frame));
    const [a, b, c] = await Future.all([loop.sendCommand(conn, 'PING'), loop.sendCommand(conn, 'DEBUG', 'PROTOCOL', 'push'), loop.sendCommand(conn, 'ECHO', 'z')]);
    expect([a, b, c]).to.deep.equal(['PONG', 'Some real reply following the push reply', 'z']);
    expect(pushes).to.deep.equal([['server-cpu-usage', 42]]);
    remove();
    await loop.sendCommand(conn, 'DEBUG', 'PROTOCOL', 'push');
    expect(pushes).to.have.length(1);
  });

  it('invalidation pushes arriving between replies leave the FIFO exact (CLIENT TRACKING on the same connection)', async () => {
    const invalidated: string[] = [];
    conn[kAddPushListener]((frame) => {
      if (frame[0] === 'invalidate' && Array.isArray(frame[1])) invalidated.push(...(frame[1] as string[]));
    });
    const other = loop.connect(server.url);
    expect(await loop.sendCommand(conn, 'CLIENT', 'TRACKING', 'ON')).to.equal('OK');
    const n = 2000;
    for (let round = 0; round < 5; round++) {
      const writes: Future<unknown>[] = [];
      for (let i = 0; i < n; i++) writes.push(loop.sendCommand(other, 'SET', `k${i}`, `r${round}-${i}`));
      await Future.all(writes);
      // Reads on the tracked connection, while the other one overwrites the keys they track:
      // the server sends an invalidation between two replies at any point.
      const reads: Future<unknown>[] = [];
      const rewrites: Future<unknown>[] = [];
      for (let i = 0; i < n; i++) {
        reads.push(loop.sendCommand(conn, 'GET', `k${i}`));
        if (i % 3 === 0) rewrites.push(loop.sendCommand(other, 'APPEND', `k${i}`, ''));
      }
      const values = await Future.all(reads);
      await Future.all(rewrites);
      for (let i = 0; i < n; i++) expect(values[i]).to.equal(`r${round}-${i}`);
    }
    await loop.sendCommand(other, 'SET', 'k1', 'last');
    await loop.sendCommand(conn, 'PING');
    expect(invalidated.length).to.be.greaterThan(0);
    expect(invalidated).to.include('k1');
  });
});

describe('RESP3 handshake', function () {
  this.timeout(60_000);

  it('HELLO 3 carries AUTH and SETNAME, and SELECT and READONLY go in the same write, before any answer', async () => {
    let client: FakeClient | undefined;
    const fake = await startFakeServer({
      onCommand: (cmd, c) => {
        client = c;
        if (c.commands.length < 3) return null; // hold the answers until the third step is here
        c.write('%1\r\n$5\r\nproto\r\n:3\r\n+OK\r\n+OK\r\n');
        return null;
      },
    });
    const loop = new EventLoop();
    try {
      const conn = loop.connect({ port: fake.port, username: 'u', password: 'pw', name: 'app', db: 2, readOnly: true });
      await new Promise<void>((resolve) => loop.once('ready', () => resolve()));
      expect(client!.commands).to.deep.equal([
        ['HELLO', '3', 'AUTH', 'u', 'pw', 'SETNAME', 'app'], ['SELECT', '2'], ['READONLY'],
      ]);
      expect(conn.protocol).to.equal(3);
    } finally {
      loop.disconnect();
      await fake.close();
    }
  });

  it('a server without HELLO: RESP2, silently, with the RESP2 handshake after it (the password never shown)', async () => {
    const fake = await startFakeServer();
    const loop = new EventLoop();
    const errors: Error[] = [];
    loop.on('error', (e: Error) => errors.push(e));
    try {
      const conn = loop.connect({ port: fake.port, password: 'secret-pw', name: 'app', db: 1 });
      expect(await loop.sendCommand(conn, 'ECHO', 'hi')).to.equal('hi');
      expect(conn.protocol).to.equal(2);
      expect(fake.clients[0]!.commands.map((c) => c[0])).to.deep.equal(['HELLO', 'SELECT', 'AUTH', 'SELECT', 'CLIENT', 'ECHO']);
      expect(errors).to.deep.equal([]);
    } finally {
      loop.disconnect();
      await fake.close();
    }
  });

  it('protocol: 2 never says HELLO', async () => {
    const fake = await startFakeServer();
    const loop = new EventLoop();
    try {
      const conn = loop.connect({ port: fake.port, protocol: 2, password: 'pw' });
      expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
      expect(fake.clients[0]!.commands.map((c) => c[0])).to.deep.equal(['AUTH', 'PING']);
      expect(conn.protocol).to.equal(2);
    } finally {
      loop.disconnect();
      await fake.close();
    }
  });

  it('protocol and resp3 are validated', () => {
    const loop = new EventLoop();
    expect(() => loop.connect({ protocol: 4 as 3 })).to.throw(/protocol must be 2 or 3/);
    expect(() => loop.connect({ protocol: 2, resp3: true })).to.throw(/resp3: true needs protocol 3/);
    expect(() => loop.connect({ resp3: 'yes' as unknown as boolean })).to.throw(/resp3 must be a boolean/);
    expect(() => loop.connect('redis://127.0.0.1?protocol=5')).to.throw(/protocol must be 2 or 3/);
    loop.disconnect();
  });

  describe('on a server with a password', () => {
    let server: RedisServer;
    before(async () => { server = await startRedis({ args: ['--requirepass', 'pw'] }); });
    after(async () => { await server.stop(); });

    it('authenticates, names and selects in the handshake; RESP3 again after a reconnect', async () => {
      const loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20 } });
      loop.on('error', () => {});
      try {
        const conn = loop.connect({ port: server.port, password: 'pw', name: 'r3', db: 3 });
        await loop.sendCommand(conn, 'SET', 'where', 'db3');
        expect(conn.protocol).to.equal(3);
        expect(await loop.sendCommand(conn, 'CLIENT', 'GETNAME')).to.equal('r3');
        const other = loop.connect({ port: server.port, password: 'pw', db: 3, protocol: 2 });
        expect(await loop.sendCommand(other, 'GET', 'where')).to.equal('db3');
        expect(other.protocol).to.equal(2);
        await loop.sendCommand(other, 'CLIENT', 'KILL', 'SKIPME', 'yes', 'TYPE', 'normal').catch(() => {});
        await new Promise<void>((resolve) => loop.once('ready', () => resolve()));
        loop.sendCommand(conn, 'ZADD', 'z', '1', 'a');
        expect(await loop.sendCommand(conn, 'ZRANGE', 'z', 0, -1, 'WITHSCORES')).to.deep.equal(['a', '1']);
        expect(conn.protocol).to.equal(3);
      } finally {
        loop.disconnect();
      }
    });

    it('a wrong password in HELLO is an AuthError saying authentication failed', async () => {
      const loop = new EventLoop();
      loop.on('error', () => {});
      try {
        const conn = loop.connect({ port: server.port, password: 'wrong' });
        const err = await loop.sendCommand(conn, 'PING').then(() => undefined, (e: Error) => e);
        expect(err).to.be.instanceOf(AuthError);
        expect(err!.message).to.match(/authentication failed/);
        expect(err!.message).not.to.include('wrong');
      } finally {
        loop.disconnect();
      }
    });

    it('no password given: RESP2 as before HELLO, commands meet NOAUTH until the caller sends AUTH', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ port: server.port });
        const err = await loop.sendCommand(conn, 'PING').then(() => undefined, (e: Error) => e);
        expect(err!.message).to.match(/NOAUTH/);
        expect(conn.protocol).to.equal(2);
        expect(await loop.sendCommand(conn, 'AUTH', 'pw')).to.equal('OK');
        expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
      } finally {
        loop.disconnect();
      }
    });
  });

  describe('pub/sub and shard sets speak RESP3 too', () => {
    let server: RedisServer;
    before(async () => { server = await startRedis(); });
    after(async () => { await server.stop(); });

    it('a subscription on RESP3 gets its messages (> frames) in order, and its connection is RESP3', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect(server.url);
        const sub = loop.subscribe(conn, ['ch'], { patterns: ['p.*'] });
        await sub.ready;
        for (const c of loop.connections) expect(c.protocol).to.equal(3);
        const got: string[] = [];
        const done = new Promise<void>((resolve) => {
          sub.on('message', (channel: string, message: string) => got.push(`${channel}:${message}`));
          sub.on('pmessage', (pattern: string, channel: string, message: string) => {
            got.push(`${pattern}>${channel}:${message}`);
            resolve();
          });
        });
        for (let i = 0; i < 1000; i++) loop.sendCommand(conn, 'PUBLISH', 'ch', String(i));
        loop.sendCommand(conn, 'PUBLISH', 'p.x', 'pattern');
        await done;
        expect(got.slice(0, 1000)).to.deep.equal(Array.from({ length: 1000 }, (_, i) => `ch:${i}`));
        expect(got[1000]).to.equal('p.*>p.x:pattern');
      } finally {
        await loop.close();
      }
    });

    it('a shard set opens RESP3 connections, with RESP2 shapes', async () => {
      const loop = new EventLoop();
      try {
        const set = loop.shards([server.url]);
        loop.sendCommand(set, 'ZADD', 'z', '2.5', 'b');
        expect(await loop.sendCommand(set, 'ZRANGE', 'z', 0, -1, 'WITHSCORES')).to.deep.equal(['b', '2.5']);
        expect(set.masterConnections.map((c) => c.protocol)).to.deep.equal([3]);
      } finally {
        await loop.close();
      }
    });
  });
});
