// Blocking commands (BLPOP, XREAD BLOCK...) would hold up every command behind them on a shared
// connection, so loop.withConnection() lends one of their own (from a small pool per server)
// and takes it back, clean, when the callback settles.
import { EventLoop } from '../lib/index.js';
import { withServers } from './servers.js';

await withServers(1, async ([url]) => {
  const loop = new EventLoop();
  const shared = loop.connect(url!);

  const job = loop.withConnection(shared, 'jobs', (own) => loop.sendCommand<[string, string]>(own, 'BLPOP', 'jobs', 5));
  // The shared connection is not stuck behind the BLPOP.
  console.log('ping on the shared connection:', await loop.sendCommand(shared, 'PING'));
  loop.sendCommand(shared, 'RPUSH', 'jobs', 'resize image 42');
  console.log('BLPOP got:', await job);
  await loop.close();
});
