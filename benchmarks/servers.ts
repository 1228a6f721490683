// Where the bench sends traffic: throwaway redis-server processes started with the test
// harness (one implementation, in harness/), or servers given by URL.
import { rawCommands, type RawEndpoint, type RespArg } from '../harness/resp.js';
import { startShards, type RedisServer } from '../harness/redis.js';
import { serverFromInfo } from '../harness/servers.js';
import type { Endpoint } from './types.js';

export interface Provisioned {
  endpoints: Endpoint[];
  /** True when the bench started the servers itself (so it may write and leave data). */
  owned: boolean;
  servers: RedisServer[];
  stop(): Promise<void>;
}

export function endpointFromUrl(input: string): Endpoint {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new Error(`not a Redis URL: ${input} (expected redis://[user:pass@]host:port/db)`);
  }
  if (url.protocol === 'rediss:') {
    throw new Error(`${input}: the bench speaks plain TCP only (its raw floor and redis-benchmark run have no TLS setup); give a redis:// URL`);
  }
  if (url.protocol !== 'redis:') throw new Error(`${input}: expected a redis:// URL`);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`${input}: the path must be a database number`);
  const host = url.hostname || '127.0.0.1';
  const port = url.port ? Number(url.port) : 6379;
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  const auth = password !== undefined ? `${username ? encodeURIComponent(username) : ''}:${encodeURIComponent(password)}@` : '';
  return { host, port, db, username, password, url: `redis://${auth}${host}:${port}/${db}` };
}

export function endpointFromServer(server: RedisServer): Endpoint {
  return { host: server.host, port: server.port, db: 0, url: server.url };
}

export async function provision(opts: { urls: string[]; shards: number }): Promise<Provisioned> {
  if (opts.urls.length > 0) {
    const endpoints = opts.urls.map(endpointFromUrl);
    await Promise.all(endpoints.map(async (e) => {
      const [reply] = await raw(e, [['PING']]);
      if (reply !== 'PONG') throw new Error(`${e.host}:${e.port} answered PING with ${String(reply)}`);
    }));
    return { endpoints, owned: false, servers: [], stop: async () => {} };
  }
  const servers = await startShards(opts.shards, { args: ['--loglevel', 'warning'] });
  return {
    endpoints: servers.map(endpointFromServer),
    owned: true,
    servers,
    stop: async () => { await Promise.all(servers.map((s) => s.stop())); },
  };
}

function rawEndpoint(e: Endpoint): RawEndpoint {
  return { host: e.host, port: e.port, password: e.password, timeoutMs: 60_000 };
}

/**
 * Run commands on one endpoint with the harness's raw client (AUTH and SELECT first when
 * needed); error replies throw. For fills and clean-ups, never timed.
 */
export async function raw(e: Endpoint, commands: readonly (readonly RespArg[])[]): Promise<unknown[]> {
  const prefix: RespArg[][] = [];
  if (e.username !== undefined && e.password !== undefined) prefix.push(['AUTH', e.username, e.password]);
  if (e.db !== 0) prefix.push(['SELECT', e.db]);
  const replies = await rawCommands(
    { ...rawEndpoint(e), password: e.username !== undefined ? undefined : e.password },
    [...prefix, ...commands],
  );
  const bad = replies.find((r) => r instanceof Error);
  if (bad) throw new Error(`${e.host}:${e.port}: ${(bad as Error).message}`);
  return replies.slice(prefix.length);
}

/** Delete keys in batches (for servers given by URL). */
export async function unlinkKeys(e: Endpoint, keys: Iterable<string>): Promise<void> {
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length > 0) await raw(e, [['UNLINK', ...batch]]);
    batch = [];
  };
  for (const key of keys) {
    batch.push(key);
    if (batch.length === 10_000) await flush();
  }
  await flush();
}

/** Which server the bench runs against, from its INFO: family (redis, valkey), release, and the redis_version it reports. */
export async function serverOf(e: Endpoint): Promise<{ family: string; version: string; redisVersion: string }> {
  const [info] = await raw(e, [['INFO', 'server']]);
  return serverFromInfo(String(info));
}
