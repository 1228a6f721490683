// The hooks most suites start with, written once: one server for the suite, and a new loop with
// a connection to it for each test. A suite keeps its own `server`, `loop` and `conn` variables
// and assigns them in `use`: serverAndLoopPerTest((f) => ({ server, loop, conn } = f));
import { EventLoop, type Connection } from '../../lib/index.js';
import { startRedis, type RedisServer } from '../../harness/redis.js';

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
