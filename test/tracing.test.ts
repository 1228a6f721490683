// Tracing on node:diagnostics_channel (docs/tracing.md): the command and connect tracing channels,
// the write, redirect, topology and reconnect channels, turned into OpenTelemetry spans by the
// example's instrumentation (examples/otel-instrumentation.ts) with an in-memory exporter.
// Against a password-protected redis-server and a real cluster (a slot moved by the harness).
import diagnostics from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DataPointType, MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics';
import {
  CHANNELS, ConfigError, EventLoop, Future, ReplyError, keySlot,
  type CommandMessage, type ConnectMessage, type ReconnectMessage, type RedirectMessage, type TopologyMessage, type WriteMessage,
} from '../lib/index.js';
import { TracedFuture, traceArgsOf } from '../lib/core/tracing.js';
import { encodeCommand } from '../lib/protocol/encoder.js';
import { findFreePort, startCluster, startRedis, type RedisCluster, type RedisServer } from '../harness/index.js';
import { instrumentRedloop, type RedloopInstrumentation } from '../examples/otel-instrumentation.js';

const PASSWORD = 'tr4ce-s3cret-pw';
const OTHER_PASSWORD = 'n3w-s3cret-pw';
const ALICE_PASSWORD = 'al1ce-s3cret-pw';
const WRONG_PASSWORD = 'wr0ng-s3cret-pw';
const SECRETS = [PASSWORD, OTHER_PASSWORD, ALICE_PASSWORD, WRONG_PASSWORD];

class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const TRACING_EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;
const PLAIN = [CHANNELS.write, CHANNELS.redirect, CHANNELS.topology, CHANNELS.reconnect, CHANNELS.cache];

interface Heard {
  channel: string;
  message: unknown;
  /** The message as it was when published (contexts change between events). */
  text: string;
}

/** Listens to every redloop channel; `heard` holds every message, in order. */
function listenToAll(): { heard: Heard[]; stop(): void } {
  const heard: Heard[] = [];
  const subs: Array<[string, (m: unknown) => void]> = [];
  const names = [
    ...PLAIN,
    ...[CHANNELS.command, CHANNELS.connect].flatMap((n) => TRACING_EVENTS.map((e) => `tracing:${n}:${e}`)),
  ];
  for (const channel of names) {
    const fn = (message: unknown) => heard.push({ channel, message, text: inspect(message, { depth: 8, breakLength: Infinity }) });
    diagnostics.subscribe(channel, fn);
    subs.push([channel, fn]);
  }
  return { heard, stop: () => { for (const [c, fn] of subs) diagnostics.unsubscribe(c, fn); } };
}

/** The events one command context went through, in order. */
function eventsOf(heard: Heard[], context: unknown, base: string = CHANNELS.command): string[] {
  return heard.filter((h) => h.message === context && h.channel.startsWith(`tracing:${base}:`)).map((h) => h.channel.slice(`tracing:${base}:`.length));
}

function otel(): { spans: InMemorySpanExporter; reader: OnDemandReader; instrumentation: RedloopInstrumentation } {
  const spans = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }).getTracer('test');
  const reader = new OnDemandReader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter('test');
  return { spans, reader, instrumentation: instrumentRedloop({ tracer, meter }) };
}

const ms = (s: ReadableSpan): number => s.duration[0] * 1e3 + s.duration[1] / 1e6;

describe('tracing: diagnostics channels', function () {
  let server: RedisServer;
  let loop: EventLoop;
  let listening: ReturnType<typeof listenToAll> | undefined;
  let telemetry: ReturnType<typeof otel> | undefined;

  before(async () => {
    server = await startRedis({ args: ['--requirepass', PASSWORD] });
  });
  after(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    listening?.stop();
    telemetry?.instrumentation.unsubscribe();
    listening = telemetry = undefined;
    await loop?.close();
  });

  it('makes a plain Future, and builds no message, while nobody listens', async () => {
    expect(diagnostics.tracingChannel(CHANNELS.command).hasSubscribers).to.equal(false);
    loop = new EventLoop({ password: PASSWORD });
    const conn = loop.connect(server.url);
    const f = loop.sendCommand(conn, 'PING');
    expect(f).to.be.instanceOf(Future);
    expect(f).not.to.be.instanceOf(TracedFuture);
    expect(f.trace).to.equal(undefined);
    expect(await f).to.equal('PONG');
  });

  it('a pipelined window gives one span per command, each with its own duration, and one write', async () => {
    loop = new EventLoop({ password: PASSWORD });
    const conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'PING'); // connected: the window below is one write
    telemetry = otel();
    listening = listenToAll();
    const window: Future<unknown>[] = [];
    const sent: string[][] = [];
    for (let i = 0; i < 20; i++) {
      const cmd = i % 2 === 0 ? ['SET', `window:${i}`, `value-${i}`] : ['GET', `window:${i - 1}`];
      sent.push(cmd);
      window.push(loop.send(conn, cmd as [string, ...string[]]));
    }
    // A traced future is still a future: awaited natively, and through Future.all.
    expect(window[0]).to.be.instanceOf(TracedFuture);
    expect(await window[1]).to.equal('value-0');
    const replies = await Future.all(window);
    expect(replies[3]).to.equal('value-2');

    const spans = telemetry.spans.getFinishedSpans();
    expect(spans).to.have.length(20);
    expect(spans.map((s) => s.name).sort()).to.deep.equal(sent.map((c) => c[0]).sort());
    for (const s of spans) {
      expect(ms(s)).to.be.greaterThan(0);
      expect(s.status.code).to.equal(SpanStatusCode.UNSET);
      expect(s.attributes['db.system.name']).to.equal('redis');
      expect(s.attributes['server.address']).to.equal('127.0.0.1');
      expect(s.attributes['server.port']).to.equal(server.port);
      expect(s.attributes['db.namespace']).to.equal('0');
      expect(s.attributes['redloop.written']).to.equal(true);
    }
    const set = spans.find((s) => s.attributes['db.query.text'] === 'SET window:0 ?');
    expect(set, 'SET keeps its key and hides its value').to.not.equal(undefined);
    expect(spans.some((s) => s.attributes['db.query.text'] === 'GET window:0')).to.equal(true);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.to.include('value-');

    // Each command's context: start, end, asyncStart, asyncEnd, exactly once.
    const starts = listening.heard.filter((h) => h.channel === `tracing:${CHANNELS.command}:start`);
    expect(starts).to.have.length(20);
    for (const h of starts) expect(eventsOf(listening.heard, h.message)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd']);

    // The window left in one write: 20 commands, their bytes.
    const writes = listening.heard.filter((h) => h.channel === CHANNELS.write).map((h) => h.message as WriteMessage);
    const bytes = sent.reduce((n, c) => n + Buffer.byteLength(encodeCommand(c[0]!, c.slice(1)) as string), 0);
    expect(writes).to.deep.equal([{ connectionId: conn.id, address: conn.address, serverAddress: '127.0.0.1', serverPort: server.port, commands: 20, bytes }]);

    const { resourceMetrics } = await telemetry.reader.collect();
    const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const duration = metrics.find((m) => m.descriptor.name === 'db.client.operation.duration')!;
    expect(duration.descriptor.unit).to.equal('s');
    expect(duration.dataPointType).to.equal(DataPointType.HISTOGRAM);
    const counts = Object.fromEntries(duration.dataPoints.map((p) => [String(p.attributes['db.operation.name']), (p.value as Histogram).count]));
    expect(counts).to.deep.equal({ SET: 10, GET: 10 });
    const depth = metrics.find((m) => m.descriptor.name === 'redloop.client.write.commands')!;
    expect((depth.dataPoints[0]!.value as Histogram).sum).to.equal(20);
  });

  it('an error reply gives an errored span, the command written', async () => {
    loop = new EventLoop({ password: PASSWORD });
    const conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'SET', 'not-a-list', 'x');
    telemetry = otel();
    listening = listenToAll();
    const err = await loop.sendCommand(conn, 'LPUSH', 'not-a-list', 'y').catch((e: Error) => e);
    expect(err).to.be.instanceOf(ReplyError);
    const [span] = telemetry.spans.getFinishedSpans();
    expect(span!.name).to.equal('LPUSH');
    expect(span!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(span!.attributes['error.type']).to.equal('WRONGTYPE');
    expect(span!.attributes['redloop.written']).to.equal(true);
    expect(span!.events.map((e) => e.name)).to.include('exception');
    const start = listening.heard.find((h) => h.channel === `tracing:${CHANNELS.command}:start`)!;
    const context = start.message as CommandMessage;
    expect(eventsOf(listening.heard, context)).to.deep.equal(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(context.error).to.equal(err);
    expect(context).to.include({ command: 'LPUSH', target: 'connection', written: true, redirections: 0 });
  });

  it('a command refused at once is still published start, end, then its failure; one never written says so', async () => {
    loop = new EventLoop({ password: PASSWORD, offlineQueue: false });
    const conn = loop.connect(server.url);
    listening = listenToAll();
    const err = await loop.sendCommand(conn, 'GET', 'k').catch((e: Error) => e); // not connected yet, no offline queue
    expect(err).to.be.instanceOf(Error);
    const context = listening.heard.find((h) => h.channel === `tracing:${CHANNELS.command}:start`)!.message as CommandMessage;
    expect(eventsOf(listening.heard, context)).to.deep.equal(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(context.written).to.equal(false);
    await loop.sendCommand(conn, 'PING').catch(() => {});
  });

  it('a timed-out command ends once, with its TimeoutError; its late reply ends nothing', async () => {
    loop = new EventLoop({ password: PASSWORD });
    const conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'PING');
    listening = listenToAll();
    const err = await loop.send(conn, ['BLPOP', 'traced:empty', '0.3'], { timeout: 50 }).catch((e: Error) => e);
    expect(err.name).to.equal('TimeoutError');
    expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG'); // after the late reply, read and dropped
    const starts = listening.heard.filter((h) => h.channel === `tracing:${CHANNELS.command}:start`).map((h) => h.message as CommandMessage);
    expect(starts.map((m) => m.command)).to.deep.equal(['BLPOP', 'PING']);
    expect(eventsOf(listening.heard, starts[0])).to.deep.equal(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(starts[0]!.error).to.equal(err);
    expect(starts[0]!.written).to.equal(true);
  });

  it('a shard set: the target kind, and the shard that was written to', async () => {
    loop = new EventLoop({ password: PASSWORD });
    const shards = loop.shards([server.url, { url: server.url, db: 1 }]);
    listening = listenToAll();
    await Future.all([loop.sendCommand(shards, 'SET', 'a', '1'), loop.sendCommand(shards, 'SET', 'b', '2')]);
    const messages = listening.heard.filter((h) => h.channel === `tracing:${CHANNELS.command}:asyncEnd`).map((h) => h.message as CommandMessage);
    expect(messages.map((m) => [m.target, m.written, m.serverPort])).to.deep.equal([['shards', true, server.port], ['shards', true, server.port]]);
    // 'a' (slot 15495) is on the second shard (db 1), 'b' (slot 3300) on the first (db 0).
    expect(messages.map((m) => m.db).sort()).to.deep.equal([0, 1]);
  });

  it('no password appears in any message: a password connection, AUTH, HELLO, CONFIG SET requirepass, ACL SETUSER, MIGRATE', async () => {
    for (const traceArgs of ['full', 'redacted'] as const) {
      listening = listenToAll();
      loop = new EventLoop({ password: PASSWORD, traceArgs });
      const conn = loop.connect(server.url);
      const userConn = loop.connect({ url: server.url, password: PASSWORD, username: 'default' });
      // Both connected before the password changes under them.
      await Future.all([loop.sendCommand(conn, 'PING'), loop.sendCommand(userConn, 'PING')]);
      const replies = await Future.all([
        loop.sendCommand(conn, 'AUTH', PASSWORD),
        loop.sendCommand(conn, 'AUTH', 'default', PASSWORD),
        loop.sendCommand(conn, 'HELLO', '3', 'AUTH', 'default', PASSWORD, 'SETNAME', 'traced'),
        loop.sendCommand(conn, 'CONFIG', 'SET', 'requirepass', OTHER_PASSWORD),
        loop.sendCommand(conn, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction', 'requirepass', PASSWORD),
        loop.sendCommand(conn, 'ACL', 'SETUSER', 'alice', 'on', `>${ALICE_PASSWORD}`, '~*', '+@all'),
        loop.sendCommand(conn, 'MIGRATE', '127.0.0.1', server.port, '', 0, 1000, 'AUTH2', 'alice', ALICE_PASSWORD, 'KEYS', 'no-such-key'),
        loop.sendCommand(conn, 'MIGRATE', '127.0.0.1', server.port, '', 0, 1000, 'AUTH', PASSWORD, 'KEYS', 'no-such-key'),
        loop.sendCommand(userConn, 'SET', 'visible-key', 'visible-value'),
      ]);
      expect(replies.slice(0, 2)).to.deep.equal(['OK', 'OK']);
      const wrong = await loop.sendCommand(conn, 'AUTH', 'alice', OTHER_PASSWORD).catch((e: Error) => e);
      expect(wrong).to.be.instanceOf(ReplyError);
      await loop.sendCommand(conn, 'ACL', 'DELUSER', 'alice');
      // A refused handshake: its attempt fails with an AuthError, which names no password either.
      loop.on('error', () => {});
      const refused = loop.connect({ url: server.url, password: WRONG_PASSWORD });
      await refused.whenClosed();
      await loop.close();
      listening.stop();

      const heard = listening.heard;
      expect(heard.filter((h) => h.channel === `tracing:${CHANNELS.connect}:asyncEnd`)).to.have.length(3);
      const failed = heard.find((h) => h.channel === `tracing:${CHANNELS.connect}:error`)!.message as ConnectMessage;
      expect(failed.error!.name).to.equal('AuthError');
      expect(heard.filter((h) => h.channel === `tracing:${CHANNELS.command}:asyncEnd`)).to.have.length(13);
      for (const h of heard) for (const secret of SECRETS) expect(h.text, `${traceArgs}: ${h.channel}`).not.to.include(secret);
      const texts = heard.map((h) => h.text).join('\n');
      if (traceArgs === 'full') expect(texts).to.include('visible-value'); // values are shown, secrets never
      else expect(texts).not.to.include('visible-value');
      expect(texts).to.include('visible-key');
    }
  });

  it("traceArgs: 'none' shows the command alone; a bad value is refused", async () => {
    expect(() => new EventLoop({ traceArgs: 'some' as never })).to.throw(ConfigError, /traceArgs/);
    loop = new EventLoop({ password: PASSWORD, traceArgs: 'none' });
    const conn = loop.connect(server.url);
    telemetry = otel();
    await loop.sendCommand(conn, 'SET', 'k', 'v');
    const [span] = telemetry.spans.getFinishedSpans();
    expect(span!.attributes['db.query.text']).to.equal('SET');
  });

  it('redacts as OpenTelemetry does (keys kept, values replaced) and hides secrets in full', () => {
    const show = (mode: 'full' | 'redacted', ...cmd: unknown[]) => traceArgsOf(String(cmd[0]).toUpperCase(), cmd, 1, mode).join(' ');
    expect(show('redacted', 'SET', 'k', 'v', 'EX', 10)).to.equal('k ? ? ?');
    expect(show('redacted', 'MSET', 'a', '1', 'b', '2')).to.equal('a ? b ?');
    expect(show('redacted', 'HSET', 'h', 'f1', 'v1', 'f2', 'v2')).to.equal('h f1 ? f2 ?');
    expect(show('redacted', 'EVAL', 'return 1', 2, 'k1', 'k2', 'arg')).to.equal('return 1 2 k1 k2 ?');
    expect(show('redacted', 'MGET', 'a', 'b', Buffer.from('c'))).to.equal('a b c');
    expect(show('redacted', 'ECHO', 'hello')).to.equal('?');
    expect(show('redacted', 'CONFIG', 'SET', 'requirepass', 'pw')).to.equal('SET requirepass ?');
    expect(show('full', 'config', 'set', 'masterauth', 'pw', 'maxclients', 10)).to.equal('set masterauth ? maxclients 10');
    expect(show('full', 'AUTH', 'user', 'pw')).to.equal('? ?');
    expect(show('full', 'HELLO', 3, 'auth', 'user', 'pw', 'SETNAME', 'n')).to.equal('3 auth user ? SETNAME n');
    expect(show('full', 'MIGRATE', 'h', 1, 'k', 0, 10, 'COPY', 'AUTH2', 'u', 'pw', 'KEYS', 'AUTH', 'x')).to.equal('h 1 k 0 10 COPY AUTH2 u ? KEYS AUTH x');
    expect(show('full', 'ACL', 'SETUSER', 'bob', 'on', '>pw1', '<pw2', '#abc', '!def', '~*')).to.equal('SETUSER bob on ? ? ? ? ~*');
    expect(show('full', 'SENTINEL', 'SET', 'mymaster', 'auth-pass', 'pw')).to.equal('SET mymaster auth-pass ?');
    expect(show('full', 'SET', 'k', 'x'.repeat(300))).to.equal(`k ${'x'.repeat(256)}…`);
    const many = traceArgsOf('DEL', Array.from({ length: 150 }, (_, i) => `k${i}`), 0, 'redacted');
    expect(many).to.have.length(101);
    expect(many[100]).to.equal('[50 more arguments]');
  });

  it('redloop:connect traces each attempt; a refused one errors, and redloop:reconnect says when the next comes', async () => {
    listening = listenToAll();
    loop = new EventLoop({ password: PASSWORD });
    const conn = loop.connect(server.url);
    await loop.sendCommand(conn, 'PING');
    const ok = listening.heard.find((h) => h.channel === `tracing:${CHANNELS.connect}:start`)!.message as ConnectMessage;
    expect(ok).to.include({ connectionId: conn.id, address: conn.address, serverAddress: '127.0.0.1', serverPort: server.port, db: 0, tls: false, attempt: 0 });
    expect(eventsOf(listening.heard, ok, CHANNELS.connect)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd']);

    const port = await findFreePort(); // nobody listens there
    const errors: Error[] = [];
    loop.on('error', (e) => errors.push(e));
    const down = loop.connect({ port, reconnect: { initialDelay: 10, maxAttempts: 2 } });
    await down.whenClosed();
    const attempts = listening.heard.filter((h) => h.channel === `tracing:${CHANNELS.connect}:start` && (h.message as ConnectMessage).connectionId === down.id);
    expect(attempts.map((h) => (h.message as ConnectMessage).attempt)).to.deep.equal([0, 1, 2]);
    for (const a of attempts) {
      expect(eventsOf(listening.heard, a.message, CHANNELS.connect)).to.deep.equal(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      expect((a.message as ConnectMessage).error).to.be.instanceOf(Error);
    }
    const reconnects = listening.heard.filter((h) => h.channel === CHANNELS.reconnect).map((h) => h.message as ReconnectMessage);
    expect(reconnects.map((r) => [r.connectionId, r.attempt])).to.deep.equal([[down.id, 1], [down.id, 2]]);
    expect(reconnects[0]!.delay).to.be.a('number');
    expect(reconnects[0]!.error).to.be.instanceOf(Error);
    expect(errors.length).to.be.greaterThan(0);
  });
});

describe('tracing: a cluster', function () {
  let rc: RedisCluster;
  let loop: EventLoop;
  let listening: ReturnType<typeof listenToAll> | undefined;
  let telemetry: ReturnType<typeof otel> | undefined;

  before(async () => {
    rc = await startCluster({ masters: 3, replicasPerMaster: 0 });
  });
  after(async () => {
    await rc?.stop();
  });
  afterEach(async () => {
    listening?.stop();
    telemetry?.instrumentation.unsubscribe();
    listening = telemetry = undefined;
    await loop?.close();
  });

  it('a MOVED shows in redloop:redirect, and the command ends once, with the final answer from the new owner', async () => {
    loop = new EventLoop();
    const cluster = loop.cluster([rc.seedUrl]);
    const key = 'traced:moved';
    await loop.sendCommand(cluster, 'SET', key, 'before');
    const slot = keySlot(key);
    const from = await rc.nodeForSlot(slot);
    const to = rc.masters().find((m) => m !== from)!;
    await rc.moveSlot(slot, to);

    telemetry = otel();
    listening = listenToAll();
    expect(await loop.sendCommand(cluster, 'GET', key)).to.equal('before');

    const starts = listening.heard.filter((h) => h.channel === `tracing:${CHANNELS.command}:start`);
    expect(starts).to.have.length(1);
    const context = starts[0]!.message as CommandMessage;
    expect(eventsOf(listening.heard, context)).to.deep.equal(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(context).to.include({ command: 'GET', target: 'cluster', written: true, redirections: 1, serverAddress: to.host, serverPort: to.port });

    const redirects = listening.heard.filter((h) => h.channel === CHANNELS.redirect).map((h) => h.message as RedirectMessage);
    expect(redirects).to.have.length(1);
    expect(redirects[0]).to.include({ kind: 'MOVED', command: 'GET', slot, from: from.address, to: to.address, redirections: 1, context });

    // Written twice (old owner, then new): two writes, one span.
    const writes = listening.heard.filter((h) => h.channel === CHANNELS.write).map((h) => h.message as WriteMessage);
    expect(writes.map((w) => w.serverPort)).to.include.members([from.port, to.port]);

    const spans = telemetry.spans.getFinishedSpans().filter((s) => s.name === 'GET');
    expect(spans).to.have.length(1);
    expect(spans[0]!.attributes['server.port']).to.equal(to.port);
    expect(spans[0]!.attributes['redloop.redirections']).to.equal(1);
    expect(spans[0]!.events.map((e) => e.name)).to.deep.equal(['redis.redirect']);
    expect(spans[0]!.status.code).to.equal(SpanStatusCode.UNSET);

    // The MOVED made the cluster read its map again: the new layout on redloop:topology.
    const deadline = Date.now() + 5000;
    let topology: TopologyMessage | undefined;
    while (topology === undefined && Date.now() < deadline) {
      topology = listening.heard.find((h) => h.channel === CHANNELS.topology)?.message as TopologyMessage | undefined;
      if (topology === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(topology, 'a topology message').to.not.equal(undefined);
    expect(topology!.target).to.equal('cluster');
    const owner = topology!.shards.find((s) => s.slots.some(([a, b]) => slot >= a && slot <= b));
    expect(owner?.master).to.equal(to.address);
  });

  it('an ASK during a migration, and a TRYAGAIN, show in redloop:redirect; each command ends once', async () => {
    loop = new EventLoop();
    const cluster = loop.cluster([rc.seedUrl]);
    const keys = ['{traced-ask}:a', '{traced-ask}:b'];
    await Future.all(keys.map((k) => loop.sendCommand(cluster, 'SET', k, k)));
    const slot = keySlot(keys[0]!);
    const from = await rc.nodeForSlot(slot);
    const to = rc.masters().find((m) => m !== from)!;
    const migration = await rc.beginMigration(slot, to);
    expect(await migration.migrateSomeKeys(1)).to.equal(1); // one key on each side
    const moved = (await to.command('KEYS', '{traced-ask}:*')) as string[];
    listening = listenToAll();
    expect(await loop.sendCommand(cluster, 'GET', moved[0]!)).to.equal(moved[0]);
    const mget = loop.sendCommand(cluster, 'MGET', ...keys); // keys on both sides: TRYAGAIN until the slot settles
    await new Promise((r) => setTimeout(r, 100));
    await migration.finish();
    expect(await mget).to.deep.equal(keys);

    const redirects = listening.heard.filter((h) => h.channel === CHANNELS.redirect).map((h) => h.message as RedirectMessage);
    const ask = redirects.find((r) => r.kind === 'ASK')!;
    expect(ask).to.include({ command: 'GET', slot, from: from.address, to: to.address, redirections: 1 });
    expect(redirects.some((r) => r.kind === 'TRYAGAIN' && r.command === 'MGET' && r.to === undefined)).to.equal(true);
    const ends = listening.heard.filter((h) => h.channel === `tracing:${CHANNELS.command}:asyncEnd`).map((h) => h.message as CommandMessage);
    expect(ends.map((m) => m.command)).to.deep.equal(['GET', 'MGET']);
    expect(ends[0]).to.include({ redirections: 1, serverPort: to.port, written: true });
    expect(ask.context).to.equal(ends[0]);
    expect(ends[1]!.redirections).to.be.greaterThan(0);
  });
});
