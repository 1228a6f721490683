// `npm run bench [-- options]`: the benchmark suite. It runs from the repository only: it needs
// the devDependencies it compares against (ioredis, node-redis) and harness/ servers,
// none of which the published package ships.
import { main } from './cli.js';
import { stopAllServers } from '../harness/redis.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
  // Workloads that bring servers of their own (clusters, shard sets) keep them for every
  // repetition; a running child process would hold the bench open after its report.
).finally(() => stopAllServers());
