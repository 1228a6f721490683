// Bytes that are not RESP, half replies and replies nobody asked for: what a real Redis never
// sends, so a tiny fake server sends them. The connection is destroyed, every pending future
// rejects (ProtocolError, or ConnectionClosedError for a plain close), and it reconnects with
// a clean parser.
import { expect } from 'chai';
import { ConnectionClosedError, EventLoop, ProtocolError, type Future } from '../../lib/index.js';
import { resp, startFakeServer, type FakeHandler, type FakeServer } from '../../harness/fake-server.js';
import { nextEvent, outcome, within, errorOf } from '../support/helpers.js';

describe('reliability: protocol errors (fake server)', function () {
  this.timeout(20_000);
  let fake: FakeServer;
  let loop: EventLoop;

  /** A fake server whose first connection misbehaves on cue; later ones are well-behaved. */
  async function setUp(misbehave: FakeHandler): Promise<void> {
    fake = await startFakeServer({ onCommand: (cmd, client) => (client.index === 1 ? misbehave(cmd, client) : undefined) });
    loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20 } });
  }
  afterEach(async () => {
    loop.disconnect();
    await fake.close();
  });

  it('garbage instead of a reply: every pending future rejects with ProtocolError, then it reconnects', async () => {
    await setUp((cmd) => (cmd[0] === 'GARBAGE' ? '!this is not RESP\r\n' : undefined));
    const conn = loop.connect(fake.url);
    expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
    const closed = nextEvent(loop, 'close', (c) => c === conn);
    const reconnecting = nextEvent(loop, 'reconnecting', (info, c) => c === conn);
    const before = loop.sendCommand(conn, 'ECHO', 'before');
    const garbage = loop.sendCommand(conn, 'GARBAGE');
    const behind: Future<string>[] = [];
    for (let i = 0; i < 10; i++) behind.push(loop.sendCommand(conn, 'ECHO', `behind${i}`));

    expect(await before).to.equal('before');
    for (const f of [garbage, ...behind]) {
      const r = await within(outcome(f), 2000, 'a pending future');
      expect(r.ok).to.equal(false);
      const err = errorOf<Error>(r);
      expect(err).to.be.instanceOf(ProtocolError);
      expect(err.name).to.equal('ProtocolError');
      expect(err.message).to.match(/not RESP/);
    }
    const [, reason] = await closed;
    expect(reason).to.be.instanceOf(ProtocolError);
    const [info] = await reconnecting;
    expect(info.attempt).to.equal(1);
    await nextEvent(loop, 'ready', (c) => c === conn);
    expect(fake.connectionCount).to.equal(2);
    expect(await loop.sendCommand(conn, 'ECHO', 'fresh')).to.equal('fresh');
  });

  it('garbage inside an array reply, right after a good reply in the same chunk', async () => {
    // The ECHO is held back and sent together with the broken answer to BROKEN, in one write.
    await setUp((cmd) => {
      if (cmd[0] === 'ECHO' && cmd[1] === 'good') return null;
      if (cmd[0] === 'BROKEN') return `${resp.bulk('good')}*3\r\n:1\r\n?what\r\n`;
      return undefined;
    });
    const conn = loop.connect(fake.url);
    const good = loop.sendCommand(conn, 'ECHO', 'good');
    const broken = loop.sendCommand(conn, 'BROKEN');
    const behind = loop.sendCommand(conn, 'ECHO', 'behind');
    expect(await good).to.equal('good');
    for (const f of [broken, behind]) {
      const r = await within(outcome(f), 2000, 'a future after the broken array');
      expect(!r.ok && r.error instanceof ProtocolError).to.equal(true);
    }
    await nextEvent(loop, 'ready', (c) => c === conn && fake.connectionCount === 2);
    expect(await loop.sendCommand(conn, 'ECHO', 'clean')).to.equal('clean');
  });

  it('a reply nobody asked for: the connection is dropped with a ProtocolError', async () => {
    await setUp((cmd) => (cmd[0] === 'TWICE' ? resp.simple('ONE') + resp.simple('TWO') : undefined));
    const conn = loop.connect(fake.url);
    const closed = nextEvent(loop, 'close', (c) => c === conn);
    expect(await loop.sendCommand(conn, 'TWICE')).to.equal('ONE');
    const [, reason] = await closed;
    expect(reason).to.be.instanceOf(ProtocolError);
    expect(reason.message).to.match(/reply nobody asked for/);
    await nextEvent(loop, 'ready', (c) => c === conn);
    expect(await loop.sendCommand(conn, 'ECHO', 'fine')).to.equal('fine');
  });

  it('half a reply then a close: the command rejects as written, and the next connection parses from a clean state', async () => {
    await setUp((cmd, client) => {
      if (cmd[0] !== 'HALF') return undefined;
      client.write('$10\r\nabc');
      client.socket.end();
      return null;
    });
    const conn = loop.connect(fake.url);
    const half = loop.sendCommand(conn, 'HALF');
    const r = await within(outcome(half), 2000, 'the half reply');
    expect(r.ok).to.equal(false);
    const err = errorOf<ConnectionClosedError>(r);
    expect(err).to.be.instanceOf(ConnectionClosedError);
    expect(err.written).to.equal(true);
    await nextEvent(loop, 'ready', (c) => c === conn);
    // A parser that kept "$10\r\nabc" would swallow these replies into a 10-byte string.
    const a = loop.sendCommand(conn, 'ECHO', 'xyz');
    const b = loop.sendCommand(conn, 'ECHO', '1234567890');
    expect(await Promise.all([a, b])).to.deep.equal(['xyz', '1234567890']);
  });

  it('garbage in answer to the handshake: no command is misattributed, the connection retries', async () => {
    await setUp((cmd) => (cmd[0] === 'CLIENT' ? '\x00\x01\x02garbage\r\n' : undefined));
    const conn = loop.connect({ port: fake.port, name: 'app' });
    const queued = loop.sendCommand(conn, 'ECHO', 'queued');
    const [, reason] = await nextEvent(loop, 'close', (c) => c === conn);
    expect(reason).to.be.instanceOf(ProtocolError);
    expect(await within(queued, 3000, 'the queued command')).to.equal('queued');
    expect(fake.connectionCount).to.equal(2);
    // HELLO 3 first: the fake server does not know it, so the RESP2 handshake follows.
    expect(fake.clients[0]!.commands.map((c) => c[0])).to.deep.equal(['HELLO', 'CLIENT']);
  });

  it('SCAN: a reply cut after its cursor came (the next SCAN already written from it) is read again after the reconnect; every key, none left in flight', async () => {
    const scanReply = (cursor: string, keys: string[]) => `*2\r\n${resp.bulk(cursor)}*${keys.length}\r\n${keys.map((k) => resp.bulk(k)).join('')}`;
    fake = await startFakeServer({
      onCommand: (cmd, client) => {
        if (cmd[0] !== 'SCAN') return undefined;
        if (client.index > 1) return cmd[1] === '0' ? scanReply('17', ['a', 'b']) : scanReply('0', ['c']);
        // The cursor and one key of three, then nothing until the next SCAN arrives: it was sent
        // from the cursor alone. Then the socket dies with that reply half read.
        if (cmd[1] === '0') return '*2\r\n$2\r\n17\r\n*3\r\n$1\r\na\r\n';
        client.socket.destroy();
        return null;
      },
    });
    loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20 } });
    loop.on('error', () => {});
    const conn = loop.connect(fake.url);
    const seen: string[] = [];
    await within((async () => { for await (const key of loop.scan(conn)) seen.push(key as string); })(), 5000, 'the scan');
    expect(fake.clients[0]!.commands.filter((c) => c[0] === 'SCAN').map((c) => c[1])).to.deep.equal(['0', '17']);
    expect(seen.sort()).to.deep.equal(['a', 'b', 'c']);
    expect(conn.pendingReplies).to.equal(0);
  });
});
