// Blocking commands (BLPOP, XREAD BLOCK, WAIT...) hold up every command behind them on their
// connection: replies come back in order, and the server answers the blocked one first. The
// cure is a connection of their own, which loop.connect() gives in one line.
import { expect } from 'chai';
import { EventLoop, TimeoutError, type Connection, type Future } from '../../lib/index.js';
import { startRedis, type RedisServer } from '../../harness/index.js';
import { nextMacrotask, outcome, within } from '../support/helpers.js';

describe('reliability: blocking commands', function () {
  this.timeout(20_000);
  let server: RedisServer;
  let loop: EventLoop;
  let shared: Connection;

  before(async () => { server = await startRedis(); });
  after(async () => { await server.stop(); });
  beforeEach(() => {
    loop = new EventLoop();
    shared = loop.connect(server.url);
  });
  afterEach(async () => { await loop.close(); });

  it('a BLPOP on its own connection does not stall the others', async () => {
    const waiter = loop.connect(server.url); // one line: a connection for the blocking command
    const job = loop.sendCommand<[string, string]>(waiter, 'BLPOP', 'jobs', 0);
    await nextMacrotask();
    const echoes: Future<string>[] = [];
    for (let i = 0; i < 10_000; i++) echoes.push(loop.sendCommand(shared, 'ECHO', `e${i}`));
    const values = await within(Promise.all(echoes), 5000, 'commands on the shared connection');
    values.forEach((v, i) => { if (v !== `e${i}`) expect.fail(`ECHO ${i} got ${v}`); });
    expect(job.settled, 'the BLPOP is still waiting').to.equal(false);
    expect(await loop.sendCommand(shared, 'RPUSH', 'jobs', 'job-1')).to.equal(1);
    expect(await within(job, 5000, 'the BLPOP')).to.deep.equal(['jobs', 'job-1']);
  });

  it('XREAD BLOCK and WAIT on their own connections do not stall the shared one either', async () => {
    const reader = loop.connect(server.url);
    const waiter = loop.connect(server.url);
    const read = loop.sendCommand<unknown[]>(reader, 'XREAD', 'BLOCK', 0, 'STREAMS', 'events', '$');
    const wait = loop.sendCommand<number>(waiter, 'WAIT', 1, 300); // no replica: returns 0 after 300 ms
    await nextMacrotask();
    for (let i = 0; i < 100; i++) expect(await loop.sendCommand(shared, 'ECHO', String(i))).to.equal(String(i));
    expect(read.settled).to.equal(false);
    await loop.sendCommand(shared, 'XADD', 'events', '*', 'type', 'click');
    const got = await within(read, 5000, 'XREAD');
    expect((got[0] as unknown[])[0]).to.equal('events');
    expect(await within(wait, 5000, 'WAIT')).to.equal(0);
  });

  it('on a shared connection a BLPOP holds up the commands behind it (documented); a timeout keeps the order', async () => {
    const unblocker = loop.connect(server.url);
    const blpop = loop.sendCommand<[string, string]>(shared, 'BLPOP', 'hol', 0);
    const stuck = loop.send<string>(shared, ['ECHO', 'stuck behind BLPOP'], { timeout: 100 });
    const r = await within(outcome(stuck), 2000, 'the command behind the BLPOP');
    expect(!r.ok && r.error instanceof TimeoutError).to.equal(true);
    expect(blpop.settled).to.equal(false);
    await loop.sendCommand(unblocker, 'RPUSH', 'hol', 'x');
    expect(await within(blpop, 5000, 'the BLPOP')).to.deep.equal(['hol', 'x']);
    // The ECHO's late reply was read and dropped: the next command gets its own.
    expect(await loop.sendCommand(shared, 'ECHO', 'mine')).to.equal('mine');
    expect(shared.pendingReplies).to.equal(0);
  });
});
