// One target for a whole Redis Cluster: every command goes to the node that owns its key's slot,
// each node's share leaves in one write per tick, all nodes in parallel, and a cross-slot MGET
// is split per slot and merged in argument order.
// Against your cluster: REDIS_CLUSTER_URL=redis://host:port npm run example -- cluster
import { EventLoop, Future } from '../lib/index.js';
import { startCluster } from '../harness/cluster.js';

const given = process.env.REDIS_CLUSTER_URL;
const throwaway = given === undefined ? await startCluster({ masters: 3, replicasPerMaster: 0 }) : undefined;
try {
  const loop = new EventLoop();
  const cluster = loop.cluster([given ?? throwaway!.seedUrl]);
  loop.on('topology', (c) => console.log('slot map:', c.nodes.map((n) => `${n.address} ${n.role} ${n.slots.map((r) => r.join('-')).join(',')}`)));

  for (let i = 0; i < 1000; i++) loop.sendCommand(cluster, 'SET', `user:${i}`, `name ${i}`); // one write per node
  const [one, three] = await Future.all([
    loop.sendCommand<string>(cluster, 'GET', 'user:1'),
    loop.sendCommand<Array<string | null>>(cluster, 'MGET', 'user:1', 'user:2', 'user:3'), // keys on 3 nodes
  ]);
  console.log(one, three, cluster.stats);
  await loop.close();
} finally {
  await throwaway?.stop();
}
