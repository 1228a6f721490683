// The client-side cache against a real server (harness/redis.ts): hits, own writes, other
// clients' writes, the invalidation racing a read in flight, reconnects to a server that lost
// its data, key expiry, FLUSHALL, the memory bound, what may not be cached, and a server that
// refuses tracking. What the server holds is checked with the harness's raw client.
import { expect } from 'chai';
import diagnostics from 'node:diagnostics_channel';
import { ConfigError, EventLoop, Future, type Connection } from '../lib/index.js';
import { startRedis, type RedisServer } from '../harness/index.js';
import { kSetReading } from '../lib/base/internal.js';
import { nextEvent, outcome, within } from './support/helpers.js';

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** INFO commandstats calls of one command (0 when it never ran). */
async function calls(srv: RedisServer, command: string): Promise<number> {
  const info = String(await srv.command('INFO', 'commandstats'));
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return m === null ? 0 : Number(m[1]);
}

const CACHED = { cache: true } as const;

describe('client-side cache', function () {
  this.timeout(120_000);
  let srv: RedisServer;
  let loop: EventLoop;
  let conn: Connection;

  before(async () => {
    srv = await startRedis();
  });
  after(async () => {
    await srv?.stop();
  });
  beforeEach(async () => {
    await srv.command('FLUSHALL');
    loop = new EventLoop();
    conn = loop.connect({ port: srv.port, cache: { maxBytes: 8 * 2 ** 20 } });
  });
  afterEach(async () => {
    await loop.close();
  });

  it('answers a read from memory after the first; stats count it; clear() empties it', async () => {
    await srv.command('SET', 'a', 'va');
    expect(await loop.send(conn, ['GET', 'a'], CACHED)).to.equal('va');
    const getsBefore = await calls(srv, 'get');
    for (let i = 0; i < 100; i++) expect(await loop.send(conn, ['GET', 'a'], CACHED)).to.equal('va');
    expect(await calls(srv, 'get')).to.equal(getsBefore);
    expect(conn.cache!.stats).to.include({ hits: 100, misses: 1, entries: 1 });
    expect(conn.cache!.stats.bytes).to.be.greaterThan(0);
    conn.cache!.clear();
    expect(conn.cache!.stats).to.include({ entries: 0, bytes: 0 });
    expect(await loop.send(conn, ['GET', 'a'], CACHED)).to.equal('va');
    expect(await calls(srv, 'get')).to.equal(getsBefore + 1);
  });

  it('reads its own writes on 5,000 keys: a read sent after a write never sees the old value, awaited or not', async () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `ryw:${i}`);
    for (let round = 0; round < 4; round++) {
      // Cache every key, then write and read again in the same tick (the write's reply not yet in).
      await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)));
      const reads = keys.map((k) => {
        loop.sendCommand(conn, 'SET', k, `v${round}`);
        return loop.send(conn, ['GET', k], CACHED);
      });
      const got = await Future.all(reads);
      expect(got.filter((v) => v !== `v${round}`).slice(0, 3)).to.deep.equal([]);
      // And once the writes are acknowledged, from the cache.
      const again = await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)));
      expect(again.filter((v) => v !== `v${round}`).slice(0, 3)).to.deep.equal([]);
    }
    // Commands with several keys, and keys written by MSET/DEL/INCR: each drops its keys.
    await loop.send(conn, ['MGET', 'ryw:1', 'ryw:2'], CACHED);
    loop.sendCommand(conn, 'MSET', 'ryw:1', 'm1', 'ryw:2', 'm2');
    expect(await loop.send(conn, ['MGET', 'ryw:1', 'ryw:2'], CACHED)).to.deep.equal(['m1', 'm2']);
    loop.sendCommand(conn, 'DEL', 'ryw:1');
    expect(await loop.send(conn, ['GET', 'ryw:1'], CACHED)).to.equal(null);
    await loop.send(conn, ['HGETALL', 'h'], CACHED);
    loop.sendCommand(conn, 'HSET', 'h', 'f', '1');
    expect(await loop.send(conn, ['HGETALL', 'h'], CACHED)).to.deep.equal(['f', '1']);
  });

  it('own writes inside a MULTI block or a script drop their keys before they are written', async () => {
    await srv.commands([['SET', 'mx:a', '0'], ['SET', 'mx:b', '0']]);
    expect(await loop.send(conn, ['GET', 'mx:a'], CACHED)).to.equal('0');
    expect(await loop.send(conn, ['GET', 'mx:b'], CACHED)).to.equal('0');
    loop.multi(conn, [['SET', 'mx:a', 'multi'], ['INCR', 'mx:x']]);
    expect(await loop.send(conn, ['GET', 'mx:a'], CACHED)).to.equal('multi');
    const setter = loop.script("redis.call('SET', KEYS[1], ARGV[1]) return 1");
    await setter.run(conn, ['mx:c'], ['load']); // loaded: the next run is one EVALSHA (a NOSCRIPT retry would run after the read, cached or not)
    setter.run(conn, ['mx:b'], ['script']);
    expect(await loop.send(conn, ['GET', 'mx:b'], CACHED)).to.equal('script');
  });

  it('another client writing hot keys: once it stops, every cached value equals the server\'s within a bounded delay, none stale', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `hot:${i}`);
    const writerLoop = new EventLoop();
    const writer = writerLoop.connect({ port: srv.port });
    let stop = false;
    let acked = 0;
    const writing = (async () => {
      while (!stop) {
        await Future.all(keys.map((k) => writerLoop.sendCommand(writer, 'INCR', k)));
        acked++;
      }
    })();
    const started = Date.now();
    let reads = 0;
    while (Date.now() - started < 3000) {
      await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)));
      reads += keys.length;
      await new Promise((r) => setImmediate(r));
    }
    stop = true;
    await writing;
    await writerLoop.close();
    expect(acked).to.be.greaterThan(10);
    const truth = (await srv.commands(keys.map((k) => ['GET', k]))) as unknown[];
    const expected = truth.map(String);
    // Bounded: the last invalidations are in flight at most a round trip or two.
    const stoppedAt = Date.now();
    await until(async () => {
      const got = await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)));
      return got.every((v, i) => v === expected[i]);
    }, 1000, 'every cached value to equal the server\'s');
    const delay = Date.now() - stoppedAt;
    // And it stays so (no entry is left stale), from the cache.
    const hits = conn.cache!.stats.hits;
    const got = await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)));
    expect(got).to.deep.equal(expected);
    expect(conn.cache!.stats.hits).to.equal(hits + keys.length);
    expect(reads).to.be.greaterThan(keys.length * 10);
    expect(delay).to.be.below(1000);
  });

  it('a read in flight that an invalidation overtakes returns its reply but does not keep it (forced 200 times)', async () => {
    // Two connections share the node's cache: B has read the key (the server tracks it for B);
    // A's read executes before another client's write, but A's reply is held back (A's socket
    // not read) until B has received the invalidation.
    const other = loop.connect({ port: srv.port, cache: {} });
    for (let i = 0; i < 200; i++) {
      const key = `race:${i % 10}`;
      await srv.command('SET', key, `old${i}`);
      await loop.send(other, ['GET', key], CACHED);
      conn.cache!.clear(); // the entry goes; the server still tracks the key for B
      const invalidationsBefore = conn.cache!.stats.invalidations;
      const pttls = await calls(srv, 'pttl');
      conn[kSetReading](false);
      const inFlight = loop.send(conn, ['GET', key], CACHED);
      await until(async () => (await calls(srv, 'pttl')) > pttls, 5000, 'A\'s read to have run');
      await srv.command('SET', key, `new${i}`);
      await loop.sendCommand(other, 'PING'); // B's invalidation came before this reply
      conn[kSetReading](true);
      expect(await inFlight).to.equal(`old${i}`); // what the server answered then
      expect(conn.cache!.stats.entries).to.equal(0);
      expect(conn.cache!.stats.invalidations).to.equal(invalidationsBefore);
      expect(await loop.send(conn, ['GET', key], CACHED)).to.equal(`new${i}`);
    }
  });

  it('concurrent misses of one read share one request', async () => {
    await srv.command('SET', 'shared', 'v');
    const before = await calls(srv, 'get');
    const all = await Future.all(Array.from({ length: 100 }, () => loop.send(conn, ['GET', 'shared'], CACHED)));
    expect(all.every((v) => v === 'v')).to.equal(true);
    expect(await calls(srv, 'get')).to.equal(before + 1);
    expect(conn.cache!.stats.misses).to.equal(1);
  });

  it('a server restarted with other data while the client was away: no old value after the reconnect', async () => {
    const c = loop.connect({ port: srv.port, cache: {}, reconnect: { initialDelay: 400, jitter: 0 } });
    const keys = Array.from({ length: 200 }, (_, i) => `rs:${i}`);
    await srv.commands(keys.map((k) => ['SET', k, 'before']));
    expect(await Future.all(keys.map((k) => loop.send(c, ['GET', k], CACHED)))).to.deep.equal(keys.map(() => 'before'));
    const ready = nextEvent(loop, 'ready', (x) => x === c, 20_000);
    srv.kill();
    await srv.restart();
    await srv.commands(keys.filter((_, i) => i % 2 === 0).map((k) => ['SET', k, 'after']));
    await ready;
    const got = await Future.all(keys.map((k) => loop.send(c, ['GET', k], CACHED)));
    expect(got).to.deep.equal(keys.map((_, i) => (i % 2 === 0 ? 'after' : null)));
    // The cache works again on the new socket.
    await srv.command('SET', 'rs:0', 'later');
    await until(async () => (await loop.send(c, ['GET', 'rs:0'], CACHED)) === 'later', 2000, 'the invalidation after the reconnect');
  });

  it('keys expiring on the server (PEXPIRE) are not served after they expired', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `exp:${i}`);
    await srv.commands(keys.flatMap((k) => [['SET', k, 'v'], ['PEXPIRE', k, 300]]));
    expect((await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)))).every((v) => v === 'v')).to.equal(true);
    expect((await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)))).every((v) => v === 'v')).to.equal(true);
    expect(conn.cache!.stats.hits).to.equal(100);
    await new Promise((r) => setTimeout(r, 320));
    const after = await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)));
    expect(after.filter((v) => v !== null).length).to.equal(0);
  });

  it('FLUSHALL from another client empties the cache', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `fl:${i}`);
    await srv.commands(keys.map((k) => ['SET', k, 'v']));
    await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)));
    expect(conn.cache!.stats.entries).to.equal(100);
    await srv.command('FLUSHALL');
    await until(() => conn.cache!.stats.entries === 0, 2000, 'the cache to be emptied');
    expect((await Future.all(keys.map((k) => loop.send(conn, ['GET', k], CACHED)))).every((v) => v === null)).to.equal(true);
  });

  it('1M distinct keys through a cache of 2 MiB: bytes never above maxBytes, memory bounded', async () => {
    const maxBytes = 2 * 2 ** 20;
    // A loop of its own: a node's cache is shared by the loop's connections to it, and sized by the first.
    const own = new EventLoop();
    try {
      const c = own.connect({ port: srv.port, cache: { maxBytes } });
      const rss0 = process.memoryUsage().rss;
      let peak = 0;
      const window = 5000;
      for (let base = 0; base < 1_000_000; base += window) {
        const batch: Array<Future<unknown>> = [];
        for (let i = base; i < base + window; i++) batch.push(own.send(c, ['GET', `mil:${i}`], CACHED));
        await Future.all(batch);
        const { bytes } = c.cache!.stats;
        if (bytes > peak) peak = bytes;
        expect(bytes).to.be.at.most(maxBytes);
      }
      const s = c.cache!.stats;
      expect(s.misses).to.equal(1_000_000);
      expect(s.evictions).to.be.greaterThan(900_000);
      expect(peak).to.be.greaterThan(maxBytes * 0.9);
      expect(process.memoryUsage().rss - rss0).to.be.below(400 * 2 ** 20);
    } finally {
      await own.close();
    }
  });

  it('refuses to cache what is not a read of keys: TypeError, nothing written', async () => {
    const pushes = await calls(srv, 'blpop');
    const cases: Array<[string, ...string[]]> = [
      ['SET', 'nc:set', '1'], ['BLPOP', 'nc:list', '1'], ['EVAL', "redis.call('set', KEYS[1], '1')", '1', 'nc:eval'],
      ['TIME'], ['RANDOMKEY'], ['SRANDMEMBER', 'nc:s'], ['PTTL', 'nc:set'], ['PING'], ['NOSUCHCOMMAND', 'x'],
    ];
    for (const cmd of cases) {
      const o = await outcome(loop.send(conn, cmd, CACHED));
      expect(o.ok, cmd[0]).to.equal(false);
      expect((o as { error: Error }).error, cmd[0]).to.be.instanceOf(TypeError);
      expect((o as { error: Error }).error.message, cmd[0]).to.match(/cannot be cached/);
    }
    expect(await srv.command('EXISTS', 'nc:set', 'nc:eval')).to.equal(0);
    expect(await calls(srv, 'blpop')).to.equal(pushes);
    const bad = await outcome(loop.send(conn, ['GET', 'x'], { cache: -5 as never }));
    expect((bad as { error: Error }).error).to.be.instanceOf(TypeError);
    const plain = loop.connect({ port: srv.port });
    const none = await outcome(loop.send(plain, ['GET', 'x'], CACHED));
    expect((none as { error: Error }).error.message).to.match(/without the cache option/);
    const l2 = new EventLoop();
    try {
      const none2 = await outcome(l2.send(l2.connect({ port: srv.port }), ['GET', 'x'], CACHED));
      expect((none2 as { error: Error }).error.message).to.match(/has no cache/);
    } finally {
      await l2.close();
    }
  });

  it('malformed per-command options on a cached target reject their future, never throw', async () => {
    const notAnObject = await outcome(loop.send(conn, ['GET', 'a'], null as never));
    const badValue = await outcome(loop.send(conn, ['GET', 'a'], { cache: true, timeout: -1 }));
    if (notAnObject.ok || badValue.ok) throw new Error('malformed options were accepted');
    expect(notAnObject.error).to.be.instanceOf(TypeError);
    expect(notAnObject.error.message).to.match(/command options must be an object/);
    expect(badValue.error).to.be.instanceOf(ConfigError);
    expect(badValue.error.message).to.match(/timeout must be a positive number/);
  });

  it('never caches an error reply', async () => {
    await srv.command('HSET', 'errh', 'f', 'v');
    for (let i = 0; i < 3; i++) {
      const o = await outcome(loop.send(conn, ['GET', 'errh'], CACHED));
      expect((o as { error: Error }).error.message).to.match(/WRONGTYPE/);
    }
    expect(conn.cache!.stats).to.include({ entries: 0, misses: 3 });
  });

  it('MGET: each key its own entry, only the misses sent', async () => {
    await srv.commands([['SET', 'mg:a', 'A'], ['SET', 'mg:b', 'B'], ['SET', 'mg:c', 'C']]);
    expect(await loop.send(conn, ['MGET', 'mg:a', 'mg:b'], CACHED)).to.deep.equal(['A', 'B']);
    const s0 = conn.cache!.stats;
    expect(await loop.send(conn, ['MGET', 'mg:b', 'mg:c', 'mg:d', 'mg:a'], CACHED)).to.deep.equal(['B', 'C', null, 'A']);
    const s1 = conn.cache!.stats;
    expect(s1.hits - s0.hits).to.equal(2);
    expect(s1.misses - s0.misses).to.equal(2);
    const mgets = await calls(srv, 'mget');
    expect(await loop.send(conn, ['MGET', 'mg:c', 'mg:a', 'mg:d'], CACHED)).to.deep.equal(['C', 'A', null]);
    expect(await calls(srv, 'mget')).to.equal(mgets);
    await srv.command('SET', 'mg:a', 'A2');
    await until(async () => (await loop.send(conn, ['MGET', 'mg:a', 'mg:b'], CACHED) as string[])[0] === 'A2', 2000, 'mg:a invalidated');
  });

  it('cache.ttl and { cache: ms } bound an entry\'s age', async () => {
    await loop.close();
    loop = new EventLoop();
    const c = loop.connect({ port: srv.port, cache: { ttl: 100 } });
    await srv.command('SET', 'ttl:a', '1');
    await loop.send(c, ['GET', 'ttl:a'], CACHED);
    await loop.send(c, ['GET', 'ttl:a'], CACHED);
    expect(c.cache!.stats.hits).to.equal(1);
    await new Promise((r) => setTimeout(r, 120));
    await loop.send(c, ['GET', 'ttl:a'], CACHED);
    expect(c.cache!.stats.misses).to.equal(2);
    await new Promise((r) => setTimeout(r, 30));
    await loop.send(c, ['GET', 'ttl:a'], { cache: 20 });
    expect(c.cache!.stats).to.include({ hits: 1, misses: 3 });
  });

  it('cache.auto caches every cacheable read, and cache: false bypasses it', async () => {
    await loop.close();
    loop = new EventLoop();
    const c = loop.connect({ port: srv.port, cache: { auto: true } });
    await srv.command('SET', 'auto:a', '1');
    expect(await loop.sendCommand(c, 'GET', 'auto:a')).to.equal('1');
    expect(await loop.sendCommand(c, 'GET', 'auto:a')).to.equal('1');
    expect(await loop.sendCommand(c, 'TIME')).to.have.length(2); // not cacheable: sent as usual
    expect(c.cache!.stats).to.include({ hits: 1, misses: 1 });
    await loop.send(c, ['GET', 'auto:a'], { cache: false });
    expect(c.cache!.stats).to.include({ hits: 1, misses: 1 });
  });

  it('broadcast mode (prefixes): keys under the prefixes are cached and invalidated; others are refused', async () => {
    const c = loop.connect({ port: srv.port, cache: { prefixes: ['user:'] } });
    await srv.command('SET', 'user:1', 'a');
    expect(await loop.send(c, ['GET', 'user:1'], CACHED)).to.equal('a');
    expect(await loop.send(c, ['GET', 'user:1'], CACHED)).to.equal('a');
    expect(c.cache!.stats.hits).to.equal(1);
    await srv.command('SET', 'user:1', 'b');
    await until(async () => (await loop.send(c, ['GET', 'user:1'], CACHED)) === 'b', 2000, 'the broadcast invalidation');
    const o = await outcome(loop.send(c, ['GET', 'other:1'], CACHED));
    expect((o as { error: Error }).error).to.be.instanceOf(TypeError);
  });

  it('a server that refuses tracking: one error event, reads go to the server and are never wrong', async () => {
    await srv.command('ACL', 'SETUSER', 'notrack', 'on', '>pw', '~*', '&*', '+@all', '-client');
    const errors: Error[] = [];
    loop.on('error', (e) => errors.push(e));
    const c = loop.connect({ port: srv.port, username: 'notrack', password: 'pw', cache: {} });
    await srv.command('SET', 'rf:a', '1');
    expect(await loop.send(c, ['GET', 'rf:a'], CACHED)).to.equal('1');
    await srv.command('SET', 'rf:a', '2');
    expect(await loop.send(c, ['GET', 'rf:a'], CACHED)).to.equal('2');
    for (let i = 0; i < 5; i++) expect(await loop.send(c, ['GET', 'rf:a'], CACHED)).to.equal('2');
    expect(errors.length).to.equal(1);
    expect(errors[0]!.message).to.match(/refused CLIENT TRACKING/);
    expect(c.cache!.stats.entries).to.equal(0);
    await srv.command('ACL', 'DELUSER', 'notrack');
  });

  it('a server without HELLO (RESP2 only): one error event, reads go to the server and are never wrong', async () => {
    const old = await startRedis({ args: ['--rename-command', 'HELLO', ''] });
    const l2 = new EventLoop();
    try {
      const errors: Error[] = [];
      l2.on('error', (e) => errors.push(e));
      const c = l2.connect({ port: old.port, cache: {} });
      await old.command('SET', 'r2:a', '1');
      expect(await l2.send(c, ['GET', 'r2:a'], CACHED)).to.equal('1');
      expect(c.protocol).to.equal(2);
      await old.command('SET', 'r2:a', '2');
      for (let i = 0; i < 3; i++) expect(await l2.send(c, ['GET', 'r2:a'], CACHED)).to.equal('2');
      expect(errors.map((e) => e.message)).to.have.length(1);
      expect(errors[0]!.message).to.match(/RESP2|RESP3/);
      expect(c.cache!.stats.entries).to.equal(0);
    } finally {
      await l2.close();
      await old.stop();
    }
  });

  it('publishes hits, misses and invalidations on redloop:cache', async () => {
    const seen: Array<{ event: string; command: string | undefined; key: unknown }> = [];
    const listener = (m: unknown) => {
      const { event, command, key } = m as { event: string; command: string | undefined; key: unknown };
      seen.push({ event, command, key });
    };
    diagnostics.subscribe('redloop:cache', listener);
    try {
      await loop.send(conn, ['GET', 'tr:a'], CACHED);
      await loop.send(conn, ['GET', 'tr:a'], CACHED);
      await loop.sendCommand(conn, 'SET', 'tr:a', '1');
    } finally {
      diagnostics.unsubscribe('redloop:cache', listener);
    }
    expect(seen.slice(0, 3)).to.deep.equal([
      { event: 'miss', command: 'GET', key: 'tr:a' },
      { event: 'hit', command: 'GET', key: 'tr:a' },
      { event: 'invalidation', command: undefined, key: 'tr:a' },
    ]);
  });

  it('protocol: 2 with cache is a ConfigError', () => {
    expect(() => loop.connect({ port: srv.port, protocol: 2, cache: {} })).to.throw(ConfigError, /RESP3/);
    expect(() => new EventLoop({ cache: { maxBytes: -1 } })).to.throw(ConfigError, /maxBytes/);
  });

  it('the loop\'s defaults turn it on for every connection; a reply handed out is frozen', async () => {
    const l2 = new EventLoop({ cache: {} });
    try {
      const c = l2.connect({ port: srv.port });
      await srv.command('RPUSH', 'fz', 'a', 'b');
      const list = await l2.send(c, ['LRANGE', 'fz', '0', '-1'], CACHED) as string[];
      expect(list).to.deep.equal(['a', 'b']);
      expect(Object.isFrozen(list)).to.equal(true);
      expect(await within(l2.send(c, ['LRANGE', 'fz', '0', '-1'], CACHED), 1000, 'a hit')).to.equal(list);
    } finally {
      await l2.close();
    }
  });
});
