// Pub/sub throughput: one publisher (the same redloop connection for every contestant)
// pipelines PUBLISH in windows; the contestant is the subscriber, timed until it has received
// every message, each checked in order.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { EventLoop, Future } from '../../lib/index.js';
import { contestant } from '../contestants.js';
import type { Endpoint, RunContext, Session } from '../types.js';
import type { Workload } from '../types.js';

const WINDOW = 10_000;

/** Publishes ctx.count messages `${nonce}:${i}` on `channel`, a window at a time; resolves when the subscriber has them all. */
async function publishAll(ctx: RunContext, publisher: { loop: EventLoop; conn: ReturnType<EventLoop['connect']> }, channel: string, received: () => Promise<void>): Promise<void> {
  for (let start = 0; start < ctx.count; start += WINDOW) {
    const end = Math.min(ctx.count, start + WINDOW);
    const fs: Future<number>[] = [];
    for (let i = start; i < end; i++) fs.push(publisher.loop.sendCommand(publisher.conn, 'PUBLISH', channel, `${ctx.nonce}:${i}`));
    const receivers = await Future.all(fs);
    if (receivers.some((r) => r !== 1)) throw new Error(`PUBLISH reached ${receivers.find((r) => r !== 1)} subscribers, expected 1`);
  }
  await received();
}

/** Counts messages, checks each is the next one, resolves when all arrived. */
function receiver(ctx: RunContext): { onMessage(m: string): void; done(): Promise<void> } {
  let next = 0;
  let failure: Error | undefined;
  let resolve: (() => void) | undefined;
  const prefix = `${ctx.nonce}:`;
  return {
    onMessage(m: string) {
      if (failure === undefined && m !== prefix + next) failure = new Error(`message ${next} was ${m}`);
      if (++next === ctx.count) resolve?.();
    },
    done() {
      if (next === ctx.count) return failure ? Promise.reject(failure) : Promise.resolve();
      return new Promise<void>((r) => { resolve = r; }).then(() => { if (failure) throw failure; });
    },
  };
}

async function openPublisher(e: Endpoint) {
  const loop = new EventLoop();
  const conn = loop.connect(e.url);
  await loop.sendCommand(conn, 'PING');
  return { loop, conn };
}

function subscriberSession(ctx: RunContext, subscribe: (channel: string, onMessage: (m: string) => void) => Promise<() => Promise<void>>): Promise<Session> {
  return (async () => {
    const e = ctx.endpoints[0]!;
    const channel = `bench:pubsub:${ctx.nonce}`;
    const publisher = await openPublisher(e);
    const r = receiver(ctx);
    const unsubscribe = await subscribe(channel, r.onMessage);
    return {
      run: async () => {
        await publishAll(ctx, publisher, channel, () => r.done());
        return { ops: ctx.count };
      },
      close: async () => {
        await unsubscribe();
        await publisher.loop.close();
      },
    };
  })();
}

export const pubsubWorkload: Workload = {
  id: 'pubsub',
  title: 'pub/sub: one subscriber receiving pipelined PUBLISHes',
  description: 'a redloop publisher pipelines PUBLISH in windows of 10,000 on one connection; the subscriber under test receives and checks each message in order',
  count: 200_000,
  window: WINDOW,
  unit: 'message',
  baseline: 'ioredis',
  floor: 'redloop',
  targets: [{
    description: 'pub/sub messages received: redloop subscriber >= 2x ioredis',
    subject: 'redloop',
    versus: ['ioredis'],
    min: 2,
  }],
  contestants: [
    contestant('redloop', (ctx) => subscriberSession(ctx, async (channel, onMessage) => {
      const loop = new EventLoop();
      const conn = loop.connect(ctx.endpoints[0]!.url);
      const sub = loop.subscribe(conn, [channel]);
      sub.on('message', (_c: string, m: string) => onMessage(m));
      await sub.ready;
      return async () => { await sub.close(); await loop.close(); };
    }), { label: 'redloop loop.subscribe()', note: "loop.subscribe(), 'message' events" }),
    contestant('ioredis', (ctx) => subscriberSession(ctx, async (channel, onMessage) => {
      const client = new Redis(ctx.endpoints[0]!.url);
      client.on('message', (_c: string, m: string) => onMessage(m));
      await client.subscribe(channel);
      return async () => { await client.quit(); };
    }), { note: "subscribe(), 'message' events" }),
    contestant('node-redis', (ctx) => subscriberSession(ctx, async (channel, onMessage) => {
      const client = createClient({ url: ctx.endpoints[0]!.url });
      client.on('error', () => {});
      await client.connect();
      await client.subscribe(channel, (m: string) => onMessage(m));
      return async () => { await client.close(); };
    }), { note: 'subscribe(channel, listener)' }),
  ],
};
