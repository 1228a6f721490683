// The registry: `--only` picks from these ids, and the bench runs them in this order.
// A new workload (e.g. mass insertion with redis-cli --pipe as a contestant) is one more
// file exporting a Workload and one more line here.
import type { Workload } from '../types.js';
import { clusterSetget } from './cluster.js';
import { sentinelSetget } from './sentinel.js';
import { massInsertWorkload } from './massinsert.js';
import { massInsertClusterWorkload, massInsertShardsWorkload } from './massinsert-cluster.js';
import { pingPypredis, pingWindows } from './ping.js';
import { setget } from './setget.js';
import { sunion } from './sunion.js';
import { pubsubWorkload } from './pubsub.js';
import { scanWorkload } from './scan.js';
import { scanClusterWorkload } from './scan-cluster.js';
import { clusterBatchWorkload, multiWorkload, txContentionWorkload } from './transactions.js';
import { cacheOneAtATime, cacheSetWindows, cacheWindows } from './cache.js';

export const WORKLOADS: readonly Workload[] = [
  pingPypredis, pingWindows, sunion, setget, clusterSetget, sentinelSetget, massInsertWorkload, massInsertClusterWorkload,
  massInsertShardsWorkload, multiWorkload, clusterBatchWorkload, txContentionWorkload, pubsubWorkload, scanWorkload, scanClusterWorkload,
  cacheWindows, cacheOneAtATime, cacheSetWindows,
];

export function findWorkloads(ids: readonly string[] | undefined): Workload[] {
  if (!ids || ids.length === 0) return [...WORKLOADS];
  return ids.map((id) => {
    const w = WORKLOADS.find((x) => x.id === id);
    if (!w) throw new Error(`unknown workload "${id}": choose from ${WORKLOADS.map((x) => x.id).join(', ')}`);
    return w;
  });
}
