// How each library is opened and closed, the way its documentation shows. Connecting and
// closing are never timed; every open returns only once each connection answers.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { EventLoop } from '../lib/index.js';
import type { Endpoint } from './types.js';

export interface RedloopClients {
  loop: EventLoop;
  conns: ReturnType<EventLoop['connect']>[];
  close(): Promise<void>;
}

/** `protocol: 2` for the RESP2 rows (and redis-parser, which knows no RESP3); RESP3 by default. */
export async function openRedloop(endpoints: readonly Endpoint[], options: { protocol?: 2 | 3 } = {}): Promise<RedloopClients> {
  const loop = new EventLoop();
  const conns = endpoints.map((e) => loop.connect({ url: e.url, ...options }));
  const pongs = await Promise.all(conns.map((c) => loop.sendCommand(c, 'PING')));
  if (pongs.some((p) => p !== 'PONG')) throw new Error(`redloop: PING on connect answered ${JSON.stringify(pongs)}`);
  return { loop, conns, close: () => loop.close() };
}

export interface IoredisClients {
  clients: Redis[];
  close(): Promise<void>;
}

export async function openIoredis(endpoints: readonly Endpoint[], opts: { autoPipelining: boolean }): Promise<IoredisClients> {
  const clients = endpoints.map((e) => new Redis(e.url, { enableAutoPipelining: opts.autoPipelining, lazyConnect: true }));
  await Promise.all(clients.map((c) => c.connect()));
  return {
    clients,
    close: async () => { await Promise.all(clients.map((c) => c.quit())); },
  };
}

function createNodeRedis(url: string) {
  return createClient({ url });
}

export type NodeRedisClient = ReturnType<typeof createNodeRedis>;

export interface NodeRedisClients {
  clients: NodeRedisClient[];
  close(): Promise<void>;
}

export async function openNodeRedis(endpoints: readonly Endpoint[]): Promise<NodeRedisClients> {
  const errors: Error[] = [];
  const clients = endpoints.map((e) => {
    const client = createNodeRedis(e.url);
    // node-redis requires an 'error' listener; errors also reject the command that hit them.
    client.on('error', (err: Error) => errors.push(err));
    return client;
  });
  await Promise.all(clients.map((c) => c.connect()));
  return {
    clients,
    close: async () => {
      await Promise.all(clients.map((c) => c.close()));
      if (errors.length > 0) throw new Error(`node-redis reported ${errors.length} error(s), first: ${errors[0]!.message}`);
    },
  };
}
