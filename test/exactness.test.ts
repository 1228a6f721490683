// Arguments and replies are exactly what they say: numbers beyond 2^53 go out as their digits,
// integer replies come back as the nearest double (or exact bigints on request), and an error
// reply anywhere in a reply is a redloop ReplyError that names its command.
import net from 'node:net';
import { expect } from 'chai';
import { ConfigError, EventLoop, ReplyError, type Connection } from '../lib/index.js';
import { ReplyDecoder, type ReplyHandler } from '../lib/protocol/decoder.js';
import { ProtocolError } from '../lib/base/errors.js';
import { encodeCommand, startRedis, type RedisServer } from '../harness/index.js';
import { rejection } from './support/helpers.js';
import { serverAndLoopPerTest } from './support/fixtures.js';

const MIN_I64 = -(2n ** 63n);
const MAX_I64 = 2n ** 63n - 1n;

describe('exactness: numbers as arguments', function () {
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  serverAndLoopPerTest((f) => ({ server, loop, conn } = f), { flush: false });

  it('stores 2**62 as 4611686018427387904, not as JavaScript prints it', async () => {
    await loop.sendCommand(conn, 'SET', 'n62', 2 ** 62);
    expect(await server.command('GET', 'n62')).to.equal('4611686018427387904');
    expect(await loop.sendCommand(conn, 'INCR', 'n62')).to.equal(2 ** 62); // 4611686018427387905 rounds to 2^62
  });

  it('sends 1e21 and -2^63 as their decimal digits; fractions as a form Redis reads back to the same double', async () => {
    await loop.sendCommand(conn, 'SET', 'e21', 1e21);
    await loop.sendCommand(conn, 'SET', 'min', -(2 ** 63));
    await loop.sendCommand(conn, 'SET', 'tiny', 1e-7);
    expect(await server.command('GET', 'e21')).to.equal('1000000000000000000000');
    expect(await server.command('GET', 'min')).to.equal('-9223372036854775808');
    expect(await loop.sendCommand(conn, 'INCRBYFLOAT', 'tiny', 0)).to.satisfy((s: string) => Number(s) === 1e-7);
    await loop.sendCommand(conn, 'ZADD', 'z', 0.1 + 0.2, 'm');
    expect(Number(await loop.sendCommand(conn, 'ZSCORE', 'z', 'm'))).to.equal(0.1 + 0.2);
  });
});

describe('exactness: integer replies', function () {
  let server: RedisServer;
  let loop: EventLoop;
  before(async () => { server = await startRedis(); });
  after(async () => { await server.stop(); });
  beforeEach(() => { loop = new EventLoop(); });
  afterEach(() => loop.close());

  it('DECR down to -2^63 is the nearest double by default, and exact with bigInt on the connection', async () => {
    const plain = loop.connect(server.url);
    const exact = loop.connect({ url: server.url, bigInt: true });
    await loop.sendCommand(plain, 'SET', 'd', String(MIN_I64 + 2n));
    expect(await loop.sendCommand(exact, 'DECR', 'd')).to.equal(MIN_I64 + 1n);
    expect(await loop.sendCommand(plain, 'DECR', 'd')).to.equal(-(2 ** 63)); // -9223372036854775808 exactly
    expect(await loop.sendCommand(exact, 'INCR', 'd')).to.equal(MIN_I64 + 1n);
    expect(await loop.sendCommand(plain, 'INCRBY', 'd', 0)).to.equal(Number(MIN_I64 + 1n)); // nearest double
    await loop.sendCommand(plain, 'SET', 'max', String(MAX_I64 - 1n));
    expect(await loop.sendCommand(exact, 'INCR', 'max')).to.equal(MAX_I64);
    expect(await loop.sendCommand(plain, 'INCRBY', 'max', 0)).to.equal(2 ** 63); // nearest double of 2^63-1
    // Small integers are bigints too in bigInt mode, so the type never depends on the value.
    expect(await loop.sendCommand(exact, 'EXISTS', 'max')).to.equal(1n);
    expect(await loop.sendCommand(plain, 'EXISTS', 'max')).to.equal(1);
  });

  it('bigInt per command overrides the connection, both ways, inside arrays too', async () => {
    const plain = loop.connect(server.url);
    const exact = loop.connect({ url: server.url, bigInt: true });
    await loop.sendCommand(plain, 'SET', 'big', String(MAX_I64));
    const [a, b, c, d] = await Promise.all([
      loop.send(plain, ['INCRBY', 'big', 0], { bigInt: true }),
      loop.sendCommand(plain, 'INCRBY', 'big', 0),
      loop.send(exact, ['INCRBY', 'big', 0], { bigInt: false }),
      loop.send(plain, ['EVAL', 'return {tonumber(ARGV[1]), {7}}', 0, 1], { bigInt: true }),
    ]);
    expect([a, b, c]).to.deep.equal([MAX_I64, 2 ** 63, 2 ** 63]);
    expect(d).to.deep.equal([1n, [7n]]);
    expect(await loop.send(exact, ['EVAL', "return {redis.call('EXISTS', KEYS[1])}", 1, 'big'])).to.deep.equal([1n]);
  });

  it('a bigInt option that is not a boolean is a ConfigError, nothing sent', async () => {
    const conn = loop.connect(server.url);
    const err = await rejection(loop.send(conn, ['PING'], { bigInt: 'yes' as never }));
    expect(err).to.be.instanceOf(ConfigError);
    expect(() => loop.connect({ url: server.url, bigInt: 1 as never })).to.throw(/bigInt must be a boolean/);
  });
});

describe('exactness: error replies inside arrays', function () {
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  serverAndLoopPerTest((f) => ({ server, loop, conn } = f), { flush: false });

  it('EXEC: the failed command\'s slot holds a ReplyError with code and command, the others their replies', async () => {
    await loop.sendCommand(conn, 'SET', 'str', 'x');
    loop.sendCommand(conn, 'MULTI');
    loop.sendCommand(conn, 'INCR', 'str');
    loop.sendCommand(conn, 'ECHO', 'ok');
    const replies = await loop.sendCommand<unknown[]>(conn, 'exec');
    expect(replies[1]).to.equal('ok');
    const err = replies[0] as ReplyError;
    expect(err).to.be.instanceOf(ReplyError);
    expect(err.code).to.equal('ERR');
    expect(err.command).to.equal('EXEC');
    expect(err.message).to.match(/not an integer/);
  });

  it('EVAL returning redis.error_reply nested in arrays: a ReplyError at every depth', async () => {
    const reply = await loop.sendCommand<unknown[]>(conn, 'eval',
      "return {1, redis.error_reply('MYERR first'), {redis.error_reply('DEEP second'), 'x'}}", 0);
    expect(reply[0]).to.equal(1);
    const [first, [second, x]] = [reply[1] as ReplyError, reply[2] as [ReplyError, string]];
    expect(first).to.be.instanceOf(ReplyError);
    expect(second).to.be.instanceOf(ReplyError);
    expect([first.code, first.command, first.message]).to.deep.equal(['MYERR', 'EVAL', 'MYERR first']);
    expect([second.code, second.command]).to.deep.equal(['DEEP', 'EVAL']);
    expect(x).to.equal('x');
    // A top-level error_reply rejects the future, as any error reply does.
    const top = await rejection(loop.sendCommand(conn, 'EVAL', "return redis.error_reply('TOP level')", 0));
    expect(top).to.be.instanceOf(ReplyError);
    expect((top as ReplyError).code).to.equal('TOP');
  });

  it('ReplyError.command is the command name upper-cased, as its doc says, however it was typed', async () => {
    await loop.sendCommand(conn, 'SET', 's', 'x');
    const err = await rejection(loop.sendCommand(conn, 'incr', 's'));
    expect(err).to.be.instanceOf(ReplyError);
    expect((err as ReplyError).command).to.equal('INCR');
    expect(new ReplyError('ERR x', 'hGetAll').command).to.equal('HGETALL');
  });
});

/** The raw bytes a real server sends for `commands`, read until the reply to a final ECHO marker. */
async function serverBytes(port: number, commands: (string | number)[][]): Promise<Buffer> {
  const marker = `end-${Date.now()}`;
  const socket = net.connect({ port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  const tail = Buffer.from(`$${marker.length}\r\n${marker}\r\n`);
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (all.length >= tail.length && all.subarray(all.length - tail.length).equals(tail)) resolve();
    });
    socket.write(Buffer.concat([...commands, ['ECHO', marker]].map((c) => encodeCommand(c))));
  });
  socket.destroy();
  const all = Buffer.concat(chunks);
  return all.subarray(0, all.length - tail.length);
}

class Collector implements ReplyHandler {
  replies: unknown[] = [];
  onReply(reply: unknown): void { this.replies.push(reply); }
  onErrorReply(message: string): void { this.replies.push(`ERROR ${message}`); }
  onProtocolError(err: ProtocolError): void { this.replies.push(err); }
  nestedError(message: string): Error { return new ReplyError(message, 'X'); }
}

function decode(bytes: Buffer, cuts: number[], options: { buffers?: boolean; bigInt?: boolean } = {}): unknown[] {
  const c = new Collector();
  const d = new ReplyDecoder(c, options.buffers ?? false, options.bigInt ?? false);
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > at) d.feed(Buffer.from(bytes.subarray(at, cut))); // a copy, as a socket would hand over
    at = Math.max(at, cut);
  }
  return c.replies;
}

describe('exactness: the decoder, on a real server\'s bytes cut anywhere', function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => { server = await startRedis(); });
  after(async () => { await server.stop(); });

  it('gives the same replies whatever the chunk boundaries (every single cut, and random cuts)', async () => {
    const big = 'v'.repeat(100_000) + 'é';
    const bytes = await serverBytes(server.port, [
      ['DEL', 'l', 'h', 'big'], ['RPUSH', 'l', 'a', '', 'ü€🚀', '-1', '12345678901234567890'], ['LRANGE', 'l', 0, -1],
      ['SET', 'i', String(MIN_I64)], ['GET', 'i'], ['INCRBY', 'i', 0], ['INCRBY', 'i', 1], ['GET', 'nope'],
      ['EVAL', "return {1, {2, {redis.error_reply('E1 x'), 'y'}}, {}, false, -42}", 0], ['NOSUCHCOMMAND'],
      ['SET', 'big', big], ['GET', 'big'], ['MGET', 'big', 'nope', 'i'], ['PING'], ['HSET', 'h', 'f', '1'], ['HGETALL', 'h'],
    ]);
    const whole = decode(bytes, []);
    expect(whole).to.have.length(16);
    expect(whole[2]).to.deep.equal(['a', '', 'ü€🚀', '-1', '12345678901234567890']);
    expect(whole[5]).to.equal(-(2 ** 63));
    expect(whole[6]).to.equal(Number(MIN_I64 + 1n));
    expect(whole[7]).to.equal(null);
    const nested = whole[8] as unknown[];
    expect(nested[0]).to.equal(1);
    expect(((nested[1] as unknown[])[1] as unknown[])[0]).to.be.instanceOf(ReplyError);
    expect(nested.slice(2)).to.deep.equal([[], null, -42]);
    expect(whole[9]).to.match(/^ERROR ERR unknown command/);
    expect(whole[11]).to.equal(big);
    expect(whole[12]).to.deep.equal([big, null, String(MIN_I64 + 1n)]);
    expect(whole.slice(13)).to.deep.equal(['PONG', 1, ['f', '1']]);
    expect(decode(bytes, [], { bigInt: true })[6]).to.equal(MIN_I64 + 1n);
    expect((decode(bytes, [], { buffers: true })[2] as Buffer[]).map((b) => b.toString())).to.deep.equal(whole[2]);

    const small = bytes.subarray(0, bytes.indexOf('$100002')); // every cut of everything before the big value
    const smallWhole = decode(small, []);
    for (let cut = 1; cut < small.length; cut++) expect(decode(small, [cut]), `cut at ${cut}`).to.deep.equal(smallWhole);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let run = 0; run < 200; run++) {
      const cuts: number[] = [];
      for (let at = 0; at < bytes.length;) cuts.push(at += 1 + Math.floor(random() * (run % 2 ? 70_000 : 40)));
      expect(decode(bytes, cuts), `run ${run}`).to.deep.equal(whole);
    }
  });

  it('push mode: message pushes without an array give what the general path gives, whatever the cuts (RESP2 arrays and RESP3 pushes)', () => {
   for (const marker of ['*', '>']) {
    const bulk = (x: string) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`;
    const push = (...xs: string[]) => `${marker}${xs.length}\r\n${xs.map(bulk).join('')}`;
    const long = 'c'.repeat(100);
    const bytes = Buffer.from([
      `${marker}3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n`,
      push('message', 'news', 'a'), push('message', 'news', ''), push('message', 'nexs', 'ü€🚀'),
      push('message', 'news', 'b'), push('pmessage', 'n*', 'news', 'c'), push('message', long, 'd'),
      push('message', long, 'e'), push('message', 'né', 'f'), push('messagf', 'news', 'g'),
      push('smessage', 'shard', 'h'), push('smessage', 'shard', ''), push('pmessage', 'n*', 'nexs', 'i'), push('pmessage', long, 'né', 'j'),
      push('pmessage', 'n*', 'x'), push('smessagf', 'shard', 'k'), push('pmessagf', 'n*', 'news', 'l'), '+OK\r\n',
    ].join(''));
    class PushCollector extends Collector {
      fast = 0;
      constructor(private readonly buffers: boolean) { super(); }
      onPushMessage(channel: unknown, message: unknown, _push: boolean, kind: 'message' | 'pmessage' | 'smessage', pattern: unknown): void {
        this.fast++;
        const type = this.buffers ? Buffer.from(kind) : kind;
        this.replies.push(kind === 'pmessage' ? [type, pattern, channel, message] : [type, channel, message]);
      }
      onPush(frame: unknown[]): void { this.replies.push(frame); }
    }
    let fastCalls = 0;
    const run = (cuts: number[], fast: boolean, buffers: boolean) => {
      const c = new PushCollector(buffers);
      const d = new ReplyDecoder(c, buffers, false);
      d.pushMessages = fast;
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        if (cut > at) d.feed(Buffer.from(bytes.subarray(at, cut)));
        at = Math.max(at, cut);
      }
      fastCalls = c.fast;
      return buffers ? c.replies.map((r) => Array.isArray(r) ? r.map((x) => Buffer.isBuffer(x) ? `B:${x.toString('latin1')}` : x) : r) : c.replies;
    };
    for (const buffers of [false, true]) {
      const general = run([], false, buffers);
      expect(general).to.have.length(18);
      expect(run([], true, buffers)).to.deep.equal(general);
      // message, smessage and pmessage pushes take the fast path (no array); the 4 malformed ones do not
      expect(fastCalls).to.equal(12);
      for (let cut = 1; cut < bytes.length; cut++) expect(run([cut], true, buffers), `cut at ${cut}`).to.deep.equal(general);
    }
    expect(run([], true, false).slice(1, 4)).to.deep.equal([['message', 'news', 'a'], ['message', 'news', ''], ['message', 'nexs', 'ü€🚀']]);
    expect(run([], true, false).slice(10, 14)).to.deep.equal([['smessage', 'shard', 'h'], ['smessage', 'shard', ''], ['pmessage', 'n*', 'nexs', 'i'], ['pmessage', long, 'né', 'j']]);
   }
  });

  it('peekHead: the first string of each top-level array comes once, before its reply, whatever the cuts; replies unchanged', () => {
    const bulk = (x: string) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`;
    const scanReply = (cursor: string, keys: string[]) => `*2\r\n${bulk(cursor)}*${keys.length}\r\n${keys.map(bulk).join('')}`;
    const bytes = Buffer.from([
      scanReply('17', ['a', 'bé', 'c']), '+OK\r\n', scanReply('0', []), '*2\r\n:1\r\n:2\r\n', '*-1\r\n',
      scanReply('123456789', Array.from({ length: 50 }, (_, i) => `key:${i}`)),
    ].join(''));
    class HeadCollector extends Collector {
      onReplyHead(first: unknown): void { this.replies.push(`HEAD ${String(first)}`); }
    }
    const run = (cuts: number[], peek: boolean) => {
      const c = new HeadCollector();
      const d = new ReplyDecoder(c, false, false);
      d.peekHead = peek;
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        if (cut > at) d.feed(Buffer.from(bytes.subarray(at, cut)));
        at = Math.max(at, cut);
      }
      return c.replies;
    };
    const plain = run([], false);
    expect(plain).to.have.length(6);
    const whole = run([], true);
    expect(whole.filter((r) => typeof r !== 'string' || !r.startsWith('HEAD '))).to.deep.equal(plain);
    expect(whole.slice(0, 2)).to.deep.equal(['HEAD 17', ['17', ['a', 'bé', 'c']]]);
    expect(whole.filter((r) => typeof r === 'string' && r.startsWith('HEAD '))).to.deep.equal(['HEAD 17', 'HEAD 0', 'HEAD 123456789']);
    for (let cut = 1; cut < bytes.length; cut++) {
      const got = run([cut], true);
      expect(got.filter((r) => typeof r !== 'string' || !r.startsWith('HEAD ')), `cut at ${cut}`).to.deep.equal(plain);
      // Each head at most once, and only right before its own reply's position.
      const heads = got.filter((r) => typeof r === 'string' && r.startsWith('HEAD '));
      expect(new Set(heads).size, `cut at ${cut}`).to.equal(heads.length);
      got.forEach((r, i) => {
        if (typeof r === 'string' && r.startsWith('HEAD ')) expect((got[i + 1] as unknown[])[0], `cut at ${cut}`).to.equal(r.slice(5));
      });
    }
  });

  it('reports a byte that is not RESP as a ProtocolError and stops (! is a RESP3 type now: ? is none)', () => {
    const replies = decode(Buffer.from('+OK\r\n?oops\r\n+NEVER\r\n'), []);
    expect(replies[0]).to.equal('OK');
    expect(replies[1]).to.be.instanceOf(ProtocolError);
    expect(replies).to.have.length(2);
  });
});
