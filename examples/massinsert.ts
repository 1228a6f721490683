// Loading a lot of data: loop.massInsert() pulls commands from a (possibly endless) source
// only while there is room, reads every reply without a future per command, and reports the
// failures by their position in the source. Memory stays flat however long the source is.
import { EventLoop } from '../lib/index.js';
import { withServers } from './servers.js';

async function* users(count: number): AsyncGenerator<string[]> {
  for (let i = 0; i < count; i++) {
    yield ['HSET', `user:${i}`, 'name', `user ${i}`, 'visits', String(i % 100)];
    if (i === 500) yield ['HINCRBY', 'user:1', 'name', '1']; // fails: name is not an integer
  }
}

await withServers(1, async ([url]) => {
  const loop = new EventLoop();
  const conn = loop.connect(url!);

  const report = await loop.massInsert(conn, users(200_000), {
    onProgress: (p) => console.log(`  ${p.sent} sent, ${p.replies} replies, ${p.errors} errors`),
    progressInterval: 100,
  });
  console.log(`sent ${report.sent}, replies ${report.replies} in ${report.elapsedMs.toFixed(0)} ms`);
  for (const e of report.errors.first) console.log(`command #${e.index} failed: ${e.message}`);

  // The connection is clean afterwards: the next command gets its own reply.
  console.log('HGET user:199999 name ->', await loop.sendCommand(conn, 'HGET', 'user:199999', 'name'));

  // replies: 'off' runs on a connection of its own under CLIENT REPLY OFF: faster, and the
  // server's errors are not reported. It resolves once the server has processed everything.
  const off = await loop.massInsert(conn, users(200_000), { replies: 'off' });
  console.log(`replies: 'off': sent ${off.sent} in ${off.elapsedMs.toFixed(0)} ms (errors not reported: ${off.errors.count})`);
  await loop.close();
});
