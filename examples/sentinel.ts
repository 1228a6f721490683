// The master of a Sentinel deployment as one target: writers keep INCRementing through a
// SENTINEL FAILOVER, and every acknowledged INCR is on the new master (writes were held from
// the first event of the failover until the new master answered ROLE).
// Against your sentinels (no failover is forced then):
//   REDIS_SENTINEL_URL=redis://host:26379 REDIS_SENTINEL_NAME=mymaster npm run example -- sentinel
import { EventLoop, Future } from '../lib/index.js';
import { startSentinels } from '../harness/sentinel.js';

const given = process.env.REDIS_SENTINEL_URL;
const throwaway = given === undefined ? await startSentinels() : undefined;
try {
  const loop = new EventLoop();
  loop.on('error', (err) => console.log('error:', err.message));
  const db = loop.sentinel({ sentinels: given !== undefined ? [given] : throwaway!.sentinelUrls, name: process.env.REDIS_SENTINEL_NAME ?? 'mymaster' });
  loop.on('topology', () => console.log('master:', db.master, 'replicas:', db.replicas.map((r) => `${r.host}:${r.port}`)));
  await db.whenReady();

  let acked = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      const window = Array.from({ length: 500 }, () => loop.sendCommand<number>(db, 'INCR', 'example:counter'));
      await Future.all(window);
      acked += window.length;
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  if (throwaway !== undefined) await throwaway.failover();
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await writer;
  const value = await loop.sendCommand<string>(db, 'GET', 'example:counter');
  console.log(`acknowledged INCRs: ${acked}, counter on the master: ${value}`, db.stats);
  await loop.sendCommand(db, 'DEL', 'example:counter');
  await loop.close();
} finally {
  await throwaway?.stop();
}
