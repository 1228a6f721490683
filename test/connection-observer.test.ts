// A layer that opens a connection of its own hears of that connection's lifecycle only
// (ConnectionObserver), instead of listening to every connection of the loop.
import { expect } from 'chai';
import { EventLoop, type Connection } from '../lib/index.js';
import { kConnect } from '../lib/base/internal.js';
import { startRedis, type RedisServer } from '../harness/index.js';

describe('ConnectionObserver: per-connection lifecycle for the layer that opened it', function () {
  let server: RedisServer;
  let loop: EventLoop;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });
  beforeEach(() => {
    loop = new EventLoop({ reconnect: { maxAttempts: 20, initialDelay: 10, maxDelay: 50 } });
    loop.on('error', () => {}); // the kill below is expected
  });
  afterEach(async () => {
    await loop.close();
  });

  it('tells onReady, onClose (with the reason) and onEnd of its own connection, after the loop\'s event, and nothing of others', async () => {
    const told: string[] = [];
    const heard: string[] = [];
    let readyAgain: () => void = () => {};
    const observed = loop[kConnect](server.url, {
      onReady: (c) => { told.push(`ready ${c === observed}`); readyAgain(); },
      onClose: (c, reason) => told.push(`close ${c === observed} ${reason instanceof Error}`),
      onEnd: (c) => told.push(`end ${c === observed}`),
    });
    const other: Connection = loop.connect(server.url);
    loop.on('ready', (c) => heard.push(c === observed ? 'observed ready' : 'other ready'));
    loop.on('close', (c) => { if (c === observed) told.push('loop close'); });

    await Promise.all([loop.sendCommand(observed, 'PING'), loop.sendCommand(other, 'PING')]);
    expect(told).to.deep.equal(['ready true']);
    expect(heard).to.have.members(['observed ready', 'other ready']);

    // The server drops the observed connection; it reconnects.
    const id = await loop.sendCommand<number>(observed, 'CLIENT', 'ID');
    const back = new Promise<void>((resolve) => { readyAgain = resolve; });
    await loop.sendCommand(other, 'CLIENT', 'KILL', 'ID', id);
    await back;
    expect(told).to.deep.equal(['ready true', 'loop close', 'close true true', 'ready true']);

    await other.close();
    expect(told).to.have.length(4);
    await observed.close();
    expect(told.at(-1)).to.equal('end true');
  });

  it('loop.connect() opens connections with no observer, as before', async () => {
    const conn = loop.connect(server.url);
    expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
  });
});
