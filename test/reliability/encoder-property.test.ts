// Property tests for the RESP encoder: random argument vectors (binary, unicode including lone
// surrogates, empty, large, numbers, bigints, Uint8Array views) go to a real server and come
// back byte for byte.
import { expect } from 'chai';
import fc from 'fast-check';
import { EventLoop, type Arg, type Connection, type Future } from '../../lib/index.js';
import { startRedis, type RedisServer } from '../../harness/index.js';

/** The bytes Redis should hold for an argument. */
function bytesOf(arg: Arg): Buffer {
  if (typeof arg === 'string') return Buffer.from(arg, 'utf8');
  // Integers go out as their exact decimal digits (String() would print 2**62 and 1e21 rounded
  // or in exponent form); other numbers as String() prints them, which Redis reads back exactly.
  if (typeof arg === 'number' && Number.isInteger(arg)) return Buffer.from(BigInt(arg).toString());
  if (typeof arg === 'number' || typeof arg === 'bigint') return Buffer.from(String(arg));
  return Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
}

const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.string({ unit: 'binary', maxLength: 50 }), // any code point, lone surrogates included
  fc.string({ unit: 'binary-ascii', maxLength: 200 }), // \r\n, \0, '$', '*'...
  fc.constantFrom('', '\r\n', '$-1\r\n', '*1\r\n$4\r\nPING\r\n', '\0', '🚀'),
);
const binary = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  // A view into a larger buffer: the encoder must honour byteOffset and byteLength.
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.nat(), fc.nat()).map(([u, a, b]) => {
    const start = a % u.length;
    return u.subarray(start, start + (b % (u.length - start + 1)));
  }),
);
const numeric = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt(),
  fc.constantFrom(0, -0, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE, 1e21, -1e-7),
);
const arg: fc.Arbitrary<Arg> = fc.oneof({ arbitrary: text, weight: 3 }, { arbitrary: binary, weight: 2 }, { arbitrary: numeric, weight: 1 });
const large: fc.Arbitrary<Arg> = fc.tuple(fc.integer({ min: 64 * 1024, max: 1024 * 1024 }), fc.nat(255), fc.boolean())
  .map(([size, byte, asString]) => (asString ? String.fromCharCode(32 + (byte % 95)).repeat(size) + 'é' : Buffer.alloc(size, byte)));

describe('reliability: encoder properties (real server)', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;

  before(async () => {
    server = await startRedis();
    loop = new EventLoop();
    conn = loop.connect(server.url);
  });
  after(async () => {
    await loop.close();
    await server.stop();
  });

  it('ECHO returns every single argument byte for byte', async () => {
    await fc.assert(fc.asyncProperty(arg, async (a) => {
      const back = await loop.send<Buffer>(conn, ['ECHO', a], { returnBuffers: true });
      expect(back.equals(bytesOf(a))).to.equal(true);
    }), { numRuns: 400 });
  });

  it('a batch of ECHOs written in one tick (strings and Buffers mixed) all come back byte for byte', async () => {
    await fc.assert(fc.asyncProperty(fc.array(arg, { minLength: 1, maxLength: 40 }), async (args) => {
      const futures: Future<Buffer>[] = args.map((a) => loop.send<Buffer>(conn, ['ECHO', a], { returnBuffers: true }));
      const back = await Promise.all(futures);
      back.forEach((b, i) => expect(b.equals(bytesOf(args[i]!)), `argument ${i}`).to.equal(true));
    }), { numRuns: 200 });
  });

  it('argument vectors survive RPUSH + LRANGE, and SET + GET, byte for byte', async () => {
    await fc.assert(fc.asyncProperty(fc.array(arg, { minLength: 1, maxLength: 30 }), arg, async (args, value) => {
      loop.sendCommand(conn, 'DEL', 'vec');
      loop.sendCommand(conn, 'RPUSH', 'vec', ...args);
      loop.sendCommand(conn, 'SET', value, value); // the value is also the key
      const [list, got] = await Promise.all([
        loop.send<Buffer[]>(conn, ['LRANGE', 'vec', 0, -1], { returnBuffers: true }),
        loop.send<Buffer>(conn, ['GET', value], { returnBuffers: true }),
      ]);
      expect(list.length).to.equal(args.length);
      list.forEach((b, i) => expect(b.equals(bytesOf(args[i]!)), `element ${i}`).to.equal(true));
      expect(got.equals(bytesOf(value))).to.equal(true);
    }), { numRuns: 200 });
  });

  it('large arguments (64 KiB to 1 MiB, strings and Buffers) come back whole', async () => {
    await fc.assert(fc.asyncProperty(large, arg, async (big, small) => {
      loop.sendCommand(conn, 'SET', 'large', big);
      const [back, echo] = await Promise.all([
        loop.send<Buffer>(conn, ['GET', 'large'], { returnBuffers: true }),
        loop.send<Buffer>(conn, ['ECHO', small], { returnBuffers: true }),
      ]);
      expect(back.equals(bytesOf(big))).to.equal(true);
      expect(echo.equals(bytesOf(small))).to.equal(true);
    }), { numRuns: 20 });
  });
});
