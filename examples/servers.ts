// Where the examples run: the servers in REDIS_URLS (comma-separated), or throwaway
// redis-server processes (valkey-server with REDLOOP_SERVER=valkey, see docs/servers.md) on free
// loopback ports, started here and stopped afterwards.
import { startShards } from '../harness/redis.js';

export async function withServers(count: number, run: (urls: string[]) => Promise<void>): Promise<void> {
  const given = process.env.REDIS_URLS?.split(',').map((u) => u.trim()).filter(Boolean);
  if (given !== undefined && given.length > 0) {
    await run(given);
    return;
  }
  const servers = await startShards(count);
  try {
    await run(servers.map((s) => s.url));
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
