// loop.massInsert against real redis-server processes: counts, error indices, backpressure
// (RSS stays flat for a 5M-command source), the connection's state afterwards, the
// replies: 'off' mode, RESP byte sources and the RESP framer.
import { createHook } from 'node:async_hooks';
import { PassThrough, Readable } from 'node:stream';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  ClientStateError, ConfigError, EventLoop, MalformedInputError, MassInsertError, RespRequestFramer, TimeoutError,
  type CommandTarget, type Connection, type MassInsertCommand,
} from '../lib/index.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { encodeCommand as rawEncode } from '../harness/resp.js';
import { rejection } from './support/helpers.js';

/** What CLIENT INFO says about the connection that sends it, as key/value pairs. */
async function clientInfo(loop: EventLoop, conn: Connection): Promise<Record<string, string>> {
  const line = String(await loop.sendCommand(conn, 'CLIENT', 'INFO')).trim();
  return Object.fromEntries(line.split(' ').map((kv) => {
    const eq = kv.indexOf('=');
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  }));
}

/** The connection is in step and the server holds nothing for it. */
async function expectClean(loop: EventLoop, conn: Connection): Promise<void> {
  expect(await loop.sendCommand(conn, 'ECHO', 'in-step')).to.equal('in-step');
  const info = await clientInfo(loop, conn);
  expect(info.oll, 'reply list length').to.equal('0');
  expect(info.omem, 'output memory').to.equal('0');
  expect(info.flags, 'client flags').to.equal('N');
  expect(conn.pendingReplies).to.equal(0);
}

function* sets(n: number, prefix = 'key'): Generator<MassInsertCommand> {
  for (let i = 0; i < n; i++) yield ['SET', `${prefix}:${i}`, `value:${i}`];
}

describe('loop.massInsert', function () {
  this.timeout(120_000);
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });
  beforeEach(async () => {
    await server.command('FLUSHALL');
    loop = new EventLoop();
    conn = loop.connect(server.url);
  });
  afterEach(async () => {
    await loop.close();
  });

  it('loads 1,000,000 SETs from a generator: every reply counted, DBSIZE matches, the connection is clean', async () => {
    const progress: number[] = [];
    const report = await loop.massInsert(conn, sets(1_000_000), { onProgress: (p) => progress.push(p.sent) });
    expect(report.sent).to.equal(1_000_000);
    expect(report.replies).to.equal(1_000_000);
    expect(report.errors).to.deep.equal({ count: 0, first: [] });
    expect(report.replyMode).to.equal('on');
    expect(report.elapsedMs).to.be.a('number');
    expect(progress.at(-1)).to.equal(1_000_000);
    expect(await server.command('DBSIZE')).to.equal(1_000_000);
    expect(await server.command('GET', 'key:0')).to.equal('value:0');
    expect(await server.command('GET', 'key:999999')).to.equal('value:999999');
    await expectClean(loop, conn);
  });

  it('reports bad commands by exact index and message, and applies everything else', async () => {
    const n = 1000;
    const commands: unknown[] = [...sets(n)];
    commands[0] = ['NOSUCHCOMMAND', 'x'];
    commands[17] = ['INCR', 'key:1']; // key:1 holds "value:1"
    commands[18] = ['SET', 'only-a-key'];
    commands[250] = ['SET', 'key:250', { not: 'an argument' }];
    commands[251] = [];
    commands[252] = 'SET key value';
    commands[253] = [42, 'x'];
    commands[999] = ['LPUSH', 'key:2', 'x']; // key:2 is a string
    const report = await loop.massInsert(conn, commands as MassInsertCommand[]);
    expect(report.errors.count).to.equal(8);
    expect(report.errors.first.map((e) => [e.index, e.name])).to.deep.equal([
      [0, 'ReplyError'], [17, 'ReplyError'], [18, 'ReplyError'],
      [250, 'TypeError'], [251, 'TypeError'], [252, 'TypeError'], [253, 'TypeError'],
      [999, 'ReplyError'],
    ]);
    const messages = report.errors.first.map((e) => e.message);
    expect(messages[0]).to.match(/^ERR unknown command 'NOSUCHCOMMAND'/);
    expect(messages[1]).to.equal('ERR value is not an integer or out of range');
    expect(messages[2]).to.equal("ERR wrong number of arguments for 'set' command");
    expect(messages[3]).to.match(/^SET: argument 2 is an object/);
    expect(messages[4]).to.match(/empty array/);
    expect(messages[5]).to.match(/must be an array/);
    expect(messages[6]).to.match(/command name must be a non-empty string/);
    expect(messages[7]).to.match(/^WRONGTYPE/);
    // Commands with bad arguments are never sent; the server answered everything that was.
    expect(report.sent).to.equal(n - 4);
    expect(report.replies).to.equal(n - 4);
    // Every other SET was applied: the 8 slots above held no SET of key:i, and none of them wrote a key.
    expect(await server.command('DBSIZE')).to.equal(n - 8);
    expect(await server.command('GET', 'key:1')).to.equal('value:1');
    expect(await server.command('GET', 'key:998')).to.equal('value:998');
    await expectClean(loop, conn);
  });

  it('lists the lowest maxErrors indices and counts the rest', async () => {
    // Replies come back in order, but bad arguments are known before the replies of earlier
    // commands: the list is still the lowest indices.
    const commands: MassInsertCommand[] = [];
    for (let i = 0; i < 100; i++) commands.push(i % 10 === 9 ? ['SET', 'k', {} as never] : ['NOSUCH']);
    const report = await loop.massInsert(conn, commands, { maxErrors: 3 });
    expect(report.errors.count).to.equal(100);
    expect(report.errors.first.map((e) => e.index)).to.deep.equal([0, 1, 2]);
    const none = await loop.massInsert(conn, commands, { maxErrors: 0 });
    expect(none.errors).to.deep.equal({ count: 100, first: [] });
    await expectClean(loop, conn);
  });

  it('keeps RSS flat for an async generator of 5,000,000 commands (and applies each once)', async () => {
    const n = 5_000_000;
    async function* incrs(): AsyncGenerator<MassInsertCommand> {
      for (let i = 0; i < n; i++) yield ['INCR', 'counter'];
    }
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
    let report;
    try {
      report = await loop.massInsert(conn, incrs(), {
        onProgress: () => { peak = Math.max(peak, process.memoryUsage().rss); },
        progressInterval: 0,
      });
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const growthMb = (peak - before) / 2 ** 20;
    expect(report.replies).to.equal(n);
    expect(report.errors.count).to.equal(0);
    expect(await server.command('GET', 'counter')).to.equal(String(n));
    expect(growthMb, `RSS grew by ${growthMb.toFixed(1)} MB`).to.be.below(150);
    await expectClean(loop, conn);
  });

  it("replies: 'off' loads everything, resolves only once the server has processed it, and leaves the caller's connection alone", async () => {
    const n = 200_000;
    const commands = function* () {
      yield* sets(n / 2);
      yield ['NOSUCHCOMMAND']; // the server's error is not reported in this mode
      yield ['SET', 'k', {} as never]; // a bad argument is
      yield* sets(n / 2, 'second');
    };
    expect(loop.connections).to.have.length(1);
    const report = await loop.massInsert(conn, commands(), { replies: 'off' });
    // The marker's reply came after every command: the data is there at once.
    expect(await server.command('DBSIZE')).to.equal(n);
    expect(report.replyMode).to.equal('off');
    expect(report.sent).to.equal(n + 1);
    expect(report.replies).to.equal(0);
    expect(report.errors.count).to.equal(1);
    expect(report.errors.first[0]).to.include({ index: n / 2 + 1, name: 'TypeError' });
    // It ran on a connection of its own, closed now.
    expect(loop.connections).to.deep.equal([conn]);
    await expectClean(loop, conn);
  });

  it("replies: 'off' opens its connection with the target's options (password, db)", async () => {
    const locked = await startRedis({ args: ['--requirepass', 's3cret'] });
    const l2 = new EventLoop();
    try {
      const c2 = l2.connect(`redis://:s3cret@127.0.0.1:${locked.port}/3`);
      const report = await l2.massInsert(c2, sets(10_000), { replies: 'off' });
      expect(report.sent).to.equal(10_000);
      const [, db3, db0] = await locked.commands([['SELECT', 3], ['DBSIZE'], ['SELECT', 0]]) as unknown[];
      expect(db3).to.equal(10_000);
      expect(db0).to.equal('OK');
      expect(await locked.command('DBSIZE')).to.equal(0);
      await expectClean(l2, c2);
    } finally {
      await l2.close();
      await locked.stop();
    }
  });

  it('reads a byte stream as RESP, split anywhere, and writes it as it came', async () => {
    const whole = Buffer.concat([...sets(5000)].map((c) => rawEncode(c as string[])));
    const stream = new PassThrough();
    const done = loop.massInsert(conn, stream);
    // Chunks of awkward sizes, cutting through headers and bulk strings.
    for (let pos = 0, size = 1; pos < whole.length; pos += size, size = (size * 7 + 3) % 97 + 1) {
      stream.write(whole.subarray(pos, pos + size));
    }
    stream.end();
    const report = await done;
    expect(report).to.include({ sent: 5000, replies: 5000, bytesIn: whole.length });
    expect(await server.command('DBSIZE')).to.equal(5000);
    await expectClean(loop, conn);
  });

  it('stops at malformed RESP: names the byte offset, applies the commands before it, and leaves the connection clean', async () => {
    const good = Buffer.concat([rawEncode(['SET', 'a', '1']), rawEncode(['SET', 'b', '2'])]);
    const bad = Buffer.from('*2\r\n$3\r\nGET\r\n$x\r\n');
    const after = rawEncode(['SET', 'c', '3']);
    const err = await loop.massInsert(conn, Readable.from([good, bad, after], { objectMode: false })).then(
      () => { throw new Error('expected a MassInsertError'); },
      (e: unknown) => e as MassInsertError,
    );
    expect(err).to.be.instanceOf(MassInsertError);
    const cause = err.cause as MalformedInputError;
    expect(cause).to.be.instanceOf(MalformedInputError);
    expect(cause.offset).to.equal(good.length + 14);
    expect(cause.message).to.match(new RegExp(`at byte ${good.length + 14} \\(in the command that starts at byte ${good.length}\\)`));
    expect(err.report).to.include({ sent: 2, replies: 2 });
    expect(await server.command('MGET', 'a', 'b', 'c')).to.deep.equal(['1', '2', null]);
    await expectClean(loop, conn);
  });

  it('reports an input that ends inside a command', async () => {
    const input = Buffer.concat([rawEncode(['SET', 'a', '1']), Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nb')]);
    const err = await loop.massInsert(conn, [input], { input: 'resp' }).catch((e: MassInsertError) => e);
    expect(err).to.be.instanceOf(MassInsertError);
    expect((err as MassInsertError).cause).to.be.instanceOf(MalformedInputError);
    expect(((err as MassInsertError).cause as MalformedInputError).offset).to.equal(rawEncode(['SET', 'a', '1']).length);
    expect(await server.command('GET', 'a')).to.equal('1');
    await expectClean(loop, conn);
  });

  it('a source that throws: what was sent is answered, and the error is the cause', async () => {
    const boom = new Error('the source broke');
    function* breaking(): Generator<MassInsertCommand> {
      yield* sets(50_000);
      throw boom;
    }
    const err = await loop.massInsert(conn, breaking()).catch((e: MassInsertError) => e);
    expect(err).to.be.instanceOf(MassInsertError);
    expect((err as MassInsertError).cause).to.equal(boom);
    expect((err as MassInsertError).report).to.include({ sent: 50_000, replies: 50_000 });
    expect(await server.command('DBSIZE')).to.equal(50_000);
    await expectClean(loop, conn);
  });

  it('waits for a connection that is still connecting', async () => {
    const fresh = loop.connect(server.url);
    expect(fresh.state).to.not.equal('ready');
    const report = await loop.massInsert(fresh, sets(150_000), { maxInFlight: 200_000 });
    expect(report.errors.count).to.equal(0);
    expect(await server.command('DBSIZE')).to.equal(150_000);
  });

  it('gives up with a TimeoutError when the server stops answering, and stays in step once it is back', async () => {
    await loop.sendCommand(conn, 'PING');
    let paused = false;
    function* stalling(): Generator<MassInsertCommand> {
      for (let i = 0; i < 100_000; i++) {
        if (i === 50_000) { server.kill('SIGSTOP'); paused = true; }
        yield ['SET', `key:${i}`, 'v'];
      }
    }
    try {
      const err = await loop.massInsert(conn, stalling(), { timeout: 300 }).catch((e: MassInsertError) => e);
      expect(err).to.be.instanceOf(MassInsertError);
      expect((err as MassInsertError).cause).to.be.instanceOf(TimeoutError);
      expect((err as MassInsertError).report.replies).to.be.below((err as MassInsertError).report.sent);
    } finally {
      if (paused) server.kill('SIGCONT');
    }
    // The late replies are read and dropped: the next command still gets its own.
    expect(await loop.sendCommand(conn, 'ECHO', 'after')).to.equal('after');
    expect(await server.command('EXISTS', 'key:0')).to.equal(1);
  });

  it('stops when the connection is gone for good, counting what was lost', async () => {
    const other = await startRedis();
    const l2 = new EventLoop({ reconnect: false });
    try {
      const c2 = l2.connect(other.url);
      await l2.sendCommand(c2, 'PING');
      function* dying(): Generator<MassInsertCommand> {
        for (let i = 0; i < 1_000_000; i++) {
          if (i === 100_000) other.kill('SIGKILL');
          yield ['SET', `key:${i}`, 'v'];
        }
      }
      const err = await l2.massInsert(c2, dying()).catch((e: MassInsertError) => e);
      expect(err).to.be.instanceOf(MassInsertError);
      expect((err as MassInsertError).cause).to.be.instanceOf(ClientStateError);
      const { report } = err as MassInsertError;
      expect(report.sent).to.be.below(1_000_000);
      expect(report.replies + report.errors.count).to.be.at.least(report.sent);
      expect(report.errors.first[0]!.name).to.equal('ConnectionClosedError');
    } finally {
      l2.disconnect();
      await other.stop();
    }
  });

  it('refuses bad options and targets before sending anything', async () => {
    // Bad options are ConfigErrors; a wrong argument (source, target) is a TypeError.
    const bad = async (p: Promise<unknown>, re: RegExp, kind: new (...args: never[]) => Error = TypeError) => {
      const e = await rejection(p);
      expect(e, String(re)).to.be.instanceOf(kind);
      expect(e!.message).to.match(re);
    };
    await bad(loop.massInsert(conn, [], { replies: 'maybe' as 'on' }), /replies must be 'on' or 'off'/, ConfigError);
    await bad(loop.massInsert(conn, [], { maxInFlight: 1 }), /maxInFlight/, ConfigError);
    await bad(loop.massInsert(conn, [], { bogus: 1 } as never), /unknown option "bogus"/, ConfigError);
    await bad(loop.massInsert(conn, 'SET a b' as never), /source must be/);
    await bad(loop.massInsert({} as never, []), /target must be/);
    const other = new EventLoop();
    const foreign = other.connect(server.url);
    await bad(loop.massInsert(foreign, []), /another EventLoop/);
    await other.close();
    // A routing layer (any CommandTarget) takes commands, but not RESP bytes it cannot route.
    const router: CommandTarget = {
      loop, commandTimeout: 0, defaultReturnBuffers: false,
      submit: (encoded, sink) => conn.submit(encoded, sink),
      waitForRoom: () => conn.waitForRoom(),
    };
    await bad(loop.massInsert(router, new PassThrough()), /RESP input needs a Connection/);
    await bad(loop.massInsert(router, [], { replies: 'off' }), /needs a Connection, a cluster or a shard set/);
    expect(await loop.massInsert(conn, [])).to.include({ sent: 0, replies: 0 });
  });

  it('works through any CommandTarget (a routing layer), not only a Connection', async () => {
    const seen: string[] = [];
    const router: CommandTarget = {
      loop, commandTimeout: 0, defaultReturnBuffers: false,
      submit: (encoded, sink, name, args, from) => {
        if (seen.length < 3) seen.push(`${name} ${String(args[from])}`);
        conn.submit(encoded, sink);
      },
      waitForRoom: () => conn.waitForRoom(),
    };
    const report = await loop.massInsert(router, sets(20_000, 'routed'));
    expect(report).to.include({ sent: 20_000, replies: 20_000 });
    expect(seen).to.deep.equal(['SET routed:0', 'SET routed:1', 'SET routed:2']);
    expect(await server.command('DBSIZE')).to.equal(20_000);
  });
});

/** Counts the Promises created while `body` runs (async_hooks sees every one). */
async function promisesCreatedBy(body: () => Promise<void>): Promise<number> {
  let count = 0;
  const hook = createHook({ init(_id, type) { if (type === 'PROMISE') count++; } });
  hook.enable();
  try {
    await body();
  } finally {
    hook.disable();
  }
  return count;
}

describe('fire-and-forget costs no Promise per command', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;

  before(async () => {
    server = await startRedis();
    loop = new EventLoop();
    conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'PING');
  });
  after(async () => {
    await loop?.close();
    await server?.stop();
  });

  it('un-awaited sendCommand: no Promise beyond the future itself, replies dropped, the one error counted and emitted on the loop', async () => {
    const n = 100_000;
    const seen: Array<[string, string]> = [];
    const onError = (err: Error, command: string) => seen.push([command, err.message]);
    loop.on('unobservedError', onError);
    const before = loop.unobservedErrors;
    try {
      const promises = await promisesCreatedBy(async () => {
        let last;
        for (let i = 0; i < n; i++) {
          last = i === n / 2 ? loop.sendCommand(conn, 'LPUSH', 'ff:0', 'x') : loop.sendCommand(conn, 'SET', `ff:${i}`, 'v');
        }
        await last;
        await new Promise((resolve) => setImmediate(resolve)); // unobserved errors are reported a macrotask later
      });
      // A future is a native Promise; nothing else is made per command (no deferred, no reaction).
      expect(promises - n, 'Promises created for 100,000 commands, beyond the futures').to.be.below(50);
    } finally {
      loop.off('unobservedError', onError);
    }
    expect(loop.unobservedErrors - before).to.equal(1);
    expect(seen).to.have.length(1);
    expect(seen[0]![0]).to.equal('LPUSH');
    expect(seen[0]![1]).to.match(/^WRONGTYPE/);
    expect(await server.command('DBSIZE')).to.equal(n - 1);
    await expectClean(loop, conn);
  });

  it('massInsert: no Promise per command either', async () => {
    const n = 100_000;
    const promises = await promisesCreatedBy(async () => {
      const report = await loop.massInsert(conn, sets(n, 'mi'));
      expect(report.replies).to.equal(n);
    });
    // One per turn and per wait, not per command.
    expect(promises).to.be.below(n / 100);
    await expectClean(loop, conn);
  });
});

describe('RespRequestFramer', () => {
  const arbCommand = fc.array(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { minLength: 1, maxLength: 6 });

  it('finds the same commands however the input is cut', () => {
    fc.assert(fc.property(fc.array(arbCommand, { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }), (commands, sizes) => {
      const whole = Buffer.concat(commands.map((c) => rawEncode(c)));
      const framer = new RespRequestFramer();
      const out: Buffer[] = [];
      let count = 0;
      for (let pos = 0, i = 0; pos < whole.length; pos += sizes[i++ % sizes.length]!) {
        const batch = framer.push(whole.subarray(pos, pos + sizes[i % sizes.length]!));
        if (batch) { out.push(batch.bytes); count += batch.count; }
      }
      framer.end();
      expect(count).to.equal(commands.length);
      expect(Buffer.concat(out).equals(whole)).to.equal(true);
      expect(framer.bytesIn).to.equal(whole.length);
    }));
  });

  const malformed: Array<[string, string, number]> = [
    ['SET a b\r\n', "'*' starting a RESP array", 0],
    ['\r\n', 'an empty line is not a command', 0],
    ['*0\r\n', 'at least 1 argument', 1],
    ['*-1\r\n', 'a digit', 1],
    ['*1\r\n+PING\r\n', "'$' starting bulk string 1 of 1", 4],
    ['*1\r\n$4\r\nPINGX\r\n', 'CRLF after the 4 bytes of bulk string 1', 12],
    ['*1\r\n$4x\r\nPING\r\n', 'a digit or CRLF', 6],
    ['*1\r\n$\r\nPING\r\n', 'a digit', 5],
    ['*1\n$4\r\nPING\r\n', 'a digit or CRLF', 2],
    ['*1\r\n$4\rPING\r\n', 'LF after CR', 7],
    ['*1\r\n$999999999999\r\n', 'at most', 13],
  ];
  for (const [input, what, offset] of malformed) {
    it(`rejects ${JSON.stringify(input)} at byte ${offset}`, () => {
      const prefix = rawEncode(['PING']);
      const framer = new RespRequestFramer();
      const batch = framer.push(Buffer.concat([prefix, Buffer.from(input, 'latin1')]));
      expect(batch?.count).to.equal(1);
      expect(framer.error).to.be.instanceOf(MalformedInputError);
      expect(framer.error!.message).to.include(what);
      expect(framer.error!.offset).to.equal(prefix.length + offset);
      expect(() => framer.push(Buffer.from('x'))).to.throw(MalformedInputError);
      expect(() => framer.end()).to.throw(MalformedInputError);
    });
  }
});
