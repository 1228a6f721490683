// Pypredis's example in redloop: one loop, two shards, every command written at once,
// and the caller awaits only the results it needs.
import { EventLoop, Future } from '../lib/index.js';
import { withServers } from './servers.js';

await withServers(2, async ([url1, url2]) => {
  const loop = new EventLoop();
  const a = loop.connect(url1!);
  const b = loop.connect(url2!);

  // Some data on each shard (not awaited: replies are read and dropped, errors reported).
  loop.sendCommand(a, 'SADD', 'set1', 'apple', 'pear', 'plum');
  loop.sendCommand(a, 'SADD', 'set2', 'pear', 'plum', 'fig');
  loop.sendCommand(b, 'SADD', 'set3', 'red', 'green');
  loop.sendCommand(b, 'SADD', 'set4', 'green', 'blue');

  // Both SINTERs go out in this tick's writes, one per shard, in parallel.
  const f1 = loop.sendCommand<string[]>(a, 'SINTER', 'set1', 'set2');
  const f2 = loop.sendCommand<string[]>(b, 'SINTER', 'set3', 'set4');
  loop.sendCommand(a, 'INCR', 'hits'); // fire and forget

  console.log('shard 1 SINTER:', (await f1).sort());
  console.log('shard 2 SINTER:', await f2);
  console.log('hits:', await loop.sendCommand(a, 'GET', 'hits'));

  // Thousands of commands in flight cost one write per shard per tick; Future.all awaits
  // them with one Promise for the batch.
  const futures: Future<number>[] = [];
  for (let i = 0; i < 10_000; i++) futures.push(loop.sendCommand(i % 2 ? a : b, 'INCR', 'counter'));
  const last = await Future.all(futures);
  console.log('counters:', last.at(-2), last.at(-1), 'stats:', a.stats);

  await loop.close(); // waits for what is in flight, then QUITs
});
