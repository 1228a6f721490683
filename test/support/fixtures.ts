// The hooks most suites start with, written once: one server for the suite, and a new loop with
// a connection to it for each test. A suite keeps its own `server`, `loop` and `conn` variables
// and assigns them in `use`: serverAndLoopPerTest((f) => ({ server, loop, conn } = f));
import { EventLoop, type Cluster, type Connection } from '../../lib/index.js';
import { startRedis, type RedisServer } from '../../harness/redis.js';
import { startCluster, type RedisCluster } from '../../harness/cluster.js';

export interface LoopFixture {
  server: RedisServer;
  loop: EventLoop;
  conn: Connection;
}

export interface FixtureOptions {
  /** FLUSHALL before each test. Default true. */
  flush?: boolean;
  /** Wait until the connection is ready (a PING) before each test. Default false. */
  ready?: boolean;
}

export function serverAndLoopPerTest(use: (f: LoopFixture) => void, options: FixtureOptions = {}): void {
  let server: RedisServer | undefined;
  let loop: EventLoop | undefined;
  before(async () => { server = await startRedis(); });
  after(async () => { await server?.stop(); });
  beforeEach(async () => {
    if (options.flush ?? true) await server!.command('FLUSHALL');
    loop = new EventLoop();
    const conn = loop.connect(server!.url);
    if (options.ready === true) await loop.sendCommand(conn, 'PING');
    use({ server: server!, loop, conn });
  });
  afterEach(async () => { await loop?.close(); });
}

export interface ClusterFixture {
  /** The harness's cluster (its nodes, failover, moveSlot...). */
  cluster: RedisCluster;
  loop: EventLoop;
  /** loop.cluster() over it, ready (slot map and command table known). */
  c: Cluster;
}

/**
 * One Redis Cluster (3 masters, a replica each) for the suite, and a new loop with a ready
 * Cluster target per test; `flush` FLUSHALLs every master before each test (default false).
 */
export function clusterAndLoopPerTest(use: (f: ClusterFixture) => void, options: { flush?: boolean } = {}): void {
  let cluster: RedisCluster | undefined;
  let loop: EventLoop | undefined;
  before(async () => { cluster = await startCluster({ masters: 3, replicasPerMaster: 1 }); });
  after(() => cluster?.stop());
  beforeEach(async () => {
    loop = new EventLoop();
    const c = loop.cluster([cluster!.seedUrl]);
    await c.whenReady();
    if (options.flush === true) await Promise.all(c.masterConnections.map((m) => loop!.sendCommand(m, 'FLUSHALL')));
    use({ cluster: cluster!, loop, c });
  });
  afterEach(async () => { await loop?.close(); });
}
