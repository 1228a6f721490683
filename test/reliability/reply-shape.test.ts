// One reply per command is what keeps every reply with its own future. A few commands break it
// on a real server: SUBSCRIBE and friends answer once per channel and then push messages,
// MONITOR streams, CLIENT REPLY OFF|SKIP answers nothing. They are refused before anything is
// written, so the commands around them keep their own replies.
import { expect } from 'chai';
import { EventLoop, type Connection } from '../../lib/index.js';
import { startRedis, type RedisServer } from '../../harness/index.js';
import { outcome, within, errorOf } from '../support/helpers.js';

describe('reliability: commands that break one reply per command', function () {
  this.timeout(20_000);
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  before(async () => { server = await startRedis(); });
  after(async () => { await server.stop(); });
  beforeEach(() => {
    loop = new EventLoop();
    conn = loop.connect({ port: server.port, commandTimeout: 2000 });
  });
  afterEach(() => loop.disconnect());

  const refused: string[][] = [
    ['SUBSCRIBE', 'ch1', 'ch2'], ['psubscribe', 'p*'], ['SSUBSCRIBE', 's1'],
    ['UNSUBSCRIBE', 'a', 'b'], ['punsubscribe'], ['SUnsubscribe', 's1'],
    ['MONITOR'], ['CLIENT', 'REPLY', 'OFF'], ['client', 'reply', 'skip'],
  ];
  it('CLIENT REPLY OFF is refused when its words are Buffers too', async () => {
    const r = await outcome(loop.sendCommand(conn, 'Client', Buffer.from('Reply'), Buffer.from('off')));
    expect(errorOf(r)).to.be.instanceOf(TypeError);
    expect(await loop.sendCommand(conn, 'ECHO', 'next')).to.equal('next');
  });
  for (const [name, ...args] of refused) {
    it(`${[name, ...args].join(' ')} rejects with a TypeError, unwritten; the commands around it get their own replies`, async () => {
      expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
      const sent = conn.stats.commandsSent;
      const before = loop.sendCommand(conn, 'ECHO', 'before');
      const bad = loop.sendCommand(conn, name!, ...args);
      const after = [loop.sendCommand(conn, 'ECHO', 'after1'), loop.sendCommand(conn, 'ECHO', 'after2')];
      const results = await within(Promise.all([before, bad, ...after].map(outcome)), 5000, 'the four commands');
      expect(results.map((r) => (r.ok ? r.value : r.error.name))).to.deep.equal(['before', 'TypeError', 'after1', 'after2']);
      expect(errorOf(results[1]!).message).to.match(/one reply per command/);
      expect(conn.stats.commandsSent - sent).to.equal(3);
    });
  }

  it('CLIENT REPLY ON, CLIENT SETNAME and PING are still sent', async () => {
    expect(await loop.sendCommand(conn, 'CLIENT', 'REPLY', 'ON')).to.equal('OK');
    expect(await loop.sendCommand(conn, 'client', 'setname', 'x')).to.equal('OK');
    expect(await loop.sendCommand(conn, 'CLIENT', 'GETNAME')).to.equal('x');
  });

  it('massInsert reports such a command by index and sends the others; replies: off still works', async () => {
    const report = await loop.massInsert(conn, [['SET', 'mi:1', 'a'], ['SUBSCRIBE', 'x'], ['SET', 'mi:2', 'b']]);
    expect(report.sent).to.equal(2);
    expect(report.errors.first.map((f) => [f.index, f.name])).to.deep.equal([[1, 'TypeError']]);
    const off = await loop.massInsert(conn, [['SET', 'mi:3', 'c']], { replies: 'off' });
    expect(off.sent).to.equal(1);
    expect(await loop.sendCommand(conn, 'MGET', 'mi:1', 'mi:2', 'mi:3')).to.deep.equal(['a', 'b', 'c']);
  });
});
