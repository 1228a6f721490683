// Blocking commands (BLPOP, XREAD BLOCK...) hold up every command behind them on their
// connection, so they get one of their own: loop.connect() is cheap.
import { EventLoop } from '../lib/index.js';
import { withServers } from './servers.js';

await withServers(1, async ([url]) => {
  const loop = new EventLoop();
  const shared = loop.connect(url!);
  const waiter = loop.connect(`${url}?name=blpop-waiter`); // its own socket, for BLPOP only

  const job = loop.sendCommand<[string, string]>(waiter, 'BLPOP', 'jobs', 5);
  // The shared connection is not stuck behind the BLPOP.
  console.log('ping on the shared connection:', await loop.sendCommand(shared, 'PING'));
  loop.sendCommand(shared, 'RPUSH', 'jobs', 'resize image 42');
  console.log('BLPOP got:', await job);
  await loop.close();
});
