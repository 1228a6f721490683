// Bad input: a wrong argument type, an unknown option, a bad URL, a closed loop. Each gives a
// clear error naming what is wrong, and nothing is written to the server for that command.
import { expect } from 'chai';
import {
  ClientStateError, ConfigError, EventLoop, parseRedisUrl, type Connection, type Future,
} from '../../lib/index.js';
import { resolveOptions } from '../../lib/base/options.js';
import type { RedisServer } from '../../harness/index.js';
import { nextMacrotask, outcome, errorOf } from '../support/helpers.js';
import { serverAndLoopPerTest } from '../support/fixtures.js';

describe('reliability: bad input', function () {
  this.timeout(20_000);
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  serverAndLoopPerTest((f) => ({ server, loop, conn } = f), { flush: false, ready: true });

  /** Runs `send`, then checks that the connection wrote nothing more than `good` commands. */
  async function writesOnly(good: number, send: () => Future<unknown>[]): Promise<Array<{ ok: boolean; error?: Error; value?: unknown }>> {
    const before = conn.stats;
    const results = await Promise.all(send().map(outcome));
    await nextMacrotask();
    const after = conn.stats;
    expect(after.commandsSent - before.commandsSent, 'commands written').to.equal(good);
    if (good === 0) expect(after.bytesWritten, 'bytes written').to.equal(before.bytesWritten);
    return results;
  }

  const badArgs: Array<[string, unknown, RegExp]> = [
    ['undefined', undefined, /argument 2 is undefined/],
    ['null', null, /argument 2 is null/],
    ['a boolean', true, /argument 2 is boolean/],
    ['an object', { a: 1 }, /argument 2 is an object/],
    ['an array', ['x'], /argument 2 is an array/],
    ['NaN', NaN, /argument 2 is NaN/],
    ['Infinity', Infinity, /argument 2 is Infinity/],
    ['a symbol', Symbol('s'), /argument 2 is symbol/],
    ['a function', () => 1, /argument 2 is function/],
    ['a Date', new Date(0), /argument 2 is an object/],
  ];
  for (const [what, value, message] of badArgs) {
    it(`rejects ${what} as an argument, naming the command and position, writing nothing`, async () => {
      const [r] = await writesOnly(0, () => [loop.sendCommand(conn, 'SET', 'k', value as string)]);
      expect(r!.ok).to.equal(false);
      expect(r!.error).to.be.instanceOf(TypeError);
      expect(r!.error!.message).to.match(/^SET: /);
      expect(r!.error!.message).to.match(message);
      expect(r!.error!.message).to.match(/must be strings, Buffers\/Uint8Arrays, finite numbers or bigints/);
    });
  }

  it('rejects only the bad command of a batch; the ones around it are written and answered', async () => {
    const results = await writesOnly(2, () => [
      loop.sendCommand(conn, 'ECHO', 'a'),
      loop.sendCommand(conn, 'ECHO', {} as string),
      loop.sendCommand(conn, 'ECHO', 'b'),
    ]);
    expect(results.map((r) => r.ok)).to.deep.equal([true, false, true]);
    expect([results[0]!.value, results[2]!.value]).to.deep.equal(['a', 'b']);
  });

  it('rejects bad command names, bad targets and malformed send() calls with a TypeError', async () => {
    const other = new EventLoop();
    const foreign = other.connect(server.url);
    try {
      const results = await writesOnly(0, () => [
        loop.sendCommand(conn, '' as string),
        loop.sendCommand(conn, 42 as unknown as string),
        loop.sendCommand(undefined as unknown as Connection, 'PING'),
        loop.sendCommand({} as Connection, 'PING'),
        loop.sendCommand(foreign, 'PING'),
        loop.send(conn, 'GET k' as never),
        loop.send(conn, [] as never),
        loop.send(conn, ['GET', 'k'], null as never),
        loop.send(conn, ['GET', 'k'], 'soon' as never),
      ]);
      const messages = results.map((r) => {
        expect(r.ok).to.equal(false);
        expect(r.error).to.be.instanceOf(TypeError);
        return r.error!.message;
      });
      expect(messages[0]).to.match(/command name must be a non-empty string, got string/);
      expect(messages[1]).to.match(/command name must be a non-empty string, got 42/);
      expect(messages[2]).to.match(/target must be a Connection .* got undefined/);
      expect(messages[3]).to.match(/target must be a Connection .* got object/);
      expect(messages[4]).to.match(/target belongs to another EventLoop/);
      expect(messages[5]).to.match(/the command must be an array like \['GET', 'key'\], got string/);
      expect(messages[6]).to.match(/command name must be a non-empty string, got undefined/);
      expect(messages[7]).to.match(/command options must be an object like \{ timeout: 500 \}, got null/);
      expect(messages[8]).to.match(/command options must be an object .* got string/);
    } finally {
      await other.close();
    }
  });

  it('rejects unknown per-command options and bad option values with a ConfigError, as connect() does', async () => {
    const script = loop.script('return 1');
    const results = await writesOnly(0, () => [
      loop.send(conn, ['GET', 'k'], { bogus: 1 } as never),
      loop.send(conn, ['GET', 'k'], { timeout: -5 }),
      loop.send(conn, ['GET', 'k'], { timeout: 'soon' as never }),
      loop.send(conn, ['GET', 'k'], { returnBuffers: 'yes' as never }),
      loop.send(conn, ['GET', 'k'], { resp3: 1 as never }),
      loop.multi(conn, [['GET', 'k']], { returnBuffers: 'yes' as never }),
      loop.multi(conn, [['GET', 'k']], { timeout: 5 } as never),
      script.run(conn, [], [], { returnBuffers: 1 as never }),
      script.run(conn, [], [], { bogus: true } as never),
    ]);
    const messages = results.map((r) => {
      expect(r.ok).to.equal(false);
      expect(r.error, r.error?.message).to.be.instanceOf(ConfigError);
      return r.error!.message;
    });
    expect(messages[0]).to.match(/unknown command option "bogus" \(known: timeout, returnBuffers, bigInt, resp3, cache\)/);
    expect(messages[1]).to.match(/timeout must be a positive number of ms, got -5/);
    expect(messages[2]).to.match(/timeout must be a positive number of ms, got the string "soon"/);
    expect(messages[3]).to.match(/returnBuffers must be a boolean, got the string "yes"/);
    expect(messages[4]).to.match(/resp3 must be a boolean, got 1/);
    expect(messages[5]).to.match(/^multi\(\): returnBuffers must be a boolean/);
    expect(messages[6]).to.match(/^multi\(\): unknown command option "timeout" \(known: returnBuffers\)/);
    expect(messages[7]).to.match(/^script\.run\(\): returnBuffers must be a boolean/);
    expect(messages[8]).to.match(/^script\.run\(\): unknown command option "bogus"/);
  });

  it('throws ConfigError for unknown options and wrong option types, naming the option', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ bogus: 1 }, /unknown option "bogus" \(known: .*host.*\)/],
      [{ prot: 6379 }, /unknown option "prot"/],
      [{ port: 'x' }, /port must be an integer 1\.\.65535, got the string "x"/],
      [{ port: '70000' }, /port must be an integer 1\.\.65535, got 70000/],
      [{ port: 70000 }, /port must be an integer 1\.\.65535, got 70000/],
      [{ host: '' }, /host must be a non-empty string/],
      [{ db: -1 }, /db must be a non-negative integer, got -1/],
      [{ db: 1.5 }, /db must be a non-negative integer, got 1.5/],
      [{ name: 'two words' }, /name must be a string without spaces/],
      [{ password: 12345 }, /password must be a string/],
      [{ username: 'u' }, /username needs a password/],
      [{ commandTimeout: -1 }, /commandTimeout must be a non-negative number, got -1/],
      [{ connectTimeout: 'slow' }, /connectTimeout must be a non-negative number, got slow/],
      [{ maxPending: 0 }, /maxPending must be a positive number/],
      [{ maxBufferedBytes: 0 }, /maxBufferedBytes must be a positive number/],
      [{ resetOnTimeout: 'yes' }, /resetOnTimeout must be a boolean/],
      [{ offlineQueue: 1 }, /offlineQueue must be a boolean/],
      [{ keepAlive: true }, /keepAlive must be a number of ms or false/],
      [{ tls: 'on' }, /tls must be true or node:tls connection options/],
      [{ reconnect: true }, /reconnect must be false or an object/],
      [{ reconnect: { retries: 3 } }, /unknown reconnect option "retries" \(known: .*maxAttempts.*\)/],
      [{ reconnect: { jitter: 2 } }, /reconnect.jitter must be between 0 and 1/],
      [{ reconnect: { factor: 0.5 } }, /reconnect.factor must be at least 1/],
      [{ reconnect: { initialDelay: -1 } }, /reconnect.initialDelay must be a non-negative number/],
      [{ url: 42 }, /url must be a string/],
      [42, /connect\(\) takes a URL string or an options object, got number/],
      [null, /connect\(\) takes a URL string or an options object, got null/],
      [[], /connect\(\) takes a URL string or an options object, got an array/],
      [['redis://127.0.0.1:6379'], /connect\(\) takes a URL string or an options object, got an array/],
    ];
    for (const [options, message] of cases) {
      expect(() => loop.connect(options as never), JSON.stringify(options)).to.throw(ConfigError, message);
    }
    expect(() => new EventLoop({ bogus: 1 } as never)).to.throw(ConfigError, /unknown option "bogus"/);
    expect(() => new EventLoop({ reconnect: { retries: 1 } } as never)).to.throw(ConfigError, /unknown reconnect option "retries"/);
    expect(loop.connections).to.have.length(1); // nothing was opened for the bad ones
  });

  it('cluster() given one URL instead of an array of seeds says so', () => {
    expect(() => loop.cluster('redis://127.0.0.1:7000' as never)).to.throw(ConfigError, /cluster\(\) takes an array of seeds: loop\.cluster\(\['redis:\/\/127\.0\.0\.1:7000'\]\)/);
    expect(() => loop.cluster('redis://:secret@127.0.0.1:7000' as never)).to.throw(ConfigError, /loop\.cluster\(\['redis:\/\/host:port'\]\)/);
    expect(loop.connections).to.have.length(1);
  });

  it('takes a port given as a string of digits, as a URL or an environment variable gives it', () => {
    expect(resolveOptions({ port: '6380' }).port).to.equal(6380);
    expect(resolveOptions({ url: 'redis://127.0.0.1:6390', port: '6391' }).port).to.equal(6391);
    expect(() => resolveOptions({ port: ' 6380' })).to.throw(ConfigError, /got the string " 6380"/);
  });

  it('throws ConfigError for bad URLs, naming what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['not a url', /not a valid Redis URL: not a url \(expected redis:\/\/host:port\/db/],
      ['http://127.0.0.1:6379', /unsupported URL scheme "http:" \(use redis:\/\/, rediss:\/\/ or unix:\/\/\)/],
      ['redis://127.0.0.1:6379/abc', /database in URL must be a number \(redis:\/\/host:port\/DB\), got "abc"/],
      ['redis://127.0.0.1:99999', /not a valid Redis URL/],
      ['redis://127.0.0.1:0', /port must be an integer 1\.\.65535, got 0/],
      ['redis://127.0.0.1?dbx=1', /unknown URL parameter "dbx" \(known: db, name, connectTimeout, commandTimeout, protocol\)/],
      ['redis://127.0.0.1?db=two', /db must be a non-negative integer, got NaN/],
      ['redis://127.0.0.1?commandTimeout=soon', /commandTimeout must be a non-negative number, got NaN/],
      ['unix://', /unix:\/\/ URL needs a socket path/],
      ['redis://:pa%ss@127.0.0.1:6379', /^the password in the URL is not valid percent-encoding \(write % as %25\)$/],
      ['redis://us%zz:pw@127.0.0.1', /^the username in the URL is not valid percent-encoding/],
      ['unix:///tmp/a%zz.sock', /^the socket path in the URL is not valid percent-encoding/],
      ['', /not a valid Redis URL/],
    ];
    for (const [url, message] of cases) {
      expect(() => loop.connect(url), url).to.throw(ConfigError, message);
    }
    expect(() => parseRedisUrl('redis://127.0.0.1/x')).to.throw(ConfigError, /database in URL/);
  });

  it('refuses use of a closed loop or connection with ClientStateError, writing nothing', async () => {
    const closedLoop = new EventLoop();
    const c = closedLoop.connect(server.url);
    await closedLoop.sendCommand(c, 'PING');
    const sentBefore = c.stats.commandsSent;
    await closedLoop.close();
    const after = await outcome(closedLoop.sendCommand(c, 'PING'));
    expect(!after.ok && after.error instanceof ClientStateError).to.equal(true);
    expect(errorOf<Error>(after).message).to.match(/EventLoop is closed; create a new one/);
    expect(() => closedLoop.connect(server.url)).to.throw(ClientStateError, /connect\(\): this EventLoop is closed/);
    const drained = await outcome(closedLoop.drain(c));
    expect(!drained.ok && drained.error instanceof ClientStateError).to.equal(true);
    expect(c.stats.commandsSent).to.equal(sentBefore);

    // A closed connection on a live loop.
    const d = loop.connect(server.url);
    await loop.sendCommand(d, 'PING');
    await d.close();
    const r = await outcome(loop.sendCommand(d, 'PING'));
    expect(!r.ok && r.error instanceof ClientStateError).to.equal(true);
    expect(errorOf<Error>(r).message).to.match(/is closed/);
    expect(d.stats.commandsSent).to.equal(1);
  });
});
