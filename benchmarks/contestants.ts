// The contestants' names, kinds and notes, shared by every workload; each workload file
// supplies the body that does its work the way that library's users would write it.
import { serverBinaries } from '../harness/servers.js';
import { redisBenchmarkMissing } from './redis-benchmark.js';
import type { Contestant, RunContext, Session } from './types.js';

export const NAIVE_MIN = 5_000;
export const NAIVE_FRACTION = 50;

/** The naive loop runs 1/50 of the count (at least 5,000 ops, at most the count). */
export function naiveCount(count: number): number {
  return Math.min(count, Math.max(NAIVE_MIN, Math.round(count / NAIVE_FRACTION)));
}

type Open = (ctx: RunContext) => Promise<Session>;

const META = {
  redloop: { label: 'redloop sendCommand + Future.all', kind: 'redloop' },
  'redloop-promise-all': { label: 'redloop sendCommand + Promise.all', kind: 'redloop' },
  'redloop-await-each': { label: 'redloop sendCommand + for (f of a) await f', kind: 'redloop' },
  'redloop-redis-parser': { label: 'redloop + Future.all, redis-parser only', kind: 'redloop' },
  'redloop-resp2': { label: 'redloop sendCommand + Future.all, RESP2', kind: 'redloop' },
  'redloop-traced': { label: 'redloop traced (a subscriber on redloop:command)', kind: 'redloop' },
  'redloop-naive': { label: 'redloop, await each in turn', kind: 'naive' },
  'redloop-sentinel': { label: 'redloop through loop.sentinel()', kind: 'redloop' },
  'redloop-cached': { label: 'redloop { cache: true } (client-side cache)', kind: 'redloop' },
  'redloop-cache-off': { label: 'redloop, cache option off', kind: 'redloop' },
  'node-redis-cache': { label: 'node-redis RESP3 + clientSideCache', kind: 'peer' },
  ioredis: { label: 'ioredis (defaults)', kind: 'peer' },
  'ioredis-auto': { label: 'ioredis enableAutoPipelining', kind: 'peer' },
  'ioredis-pipeline': { label: 'ioredis pipeline().exec()', kind: 'peer' },
  'node-redis': { label: 'node-redis (defaults)', kind: 'peer' },
  'raw-floor': { label: 'raw floor: socket + redis-parser', kind: 'floor' },
  'redis-benchmark': { label: 'redis-benchmark (C)', kind: 'floor' },
} as const satisfies Record<string, Pick<Contestant, 'label' | 'kind'>>;

export type ContestantId = keyof typeof META;

export function contestant(id: ContestantId, open: Open, extra: Partial<Pick<Contestant, 'note' | 'countFor' | 'label'>> = {}): Contestant {
  const meta = META[id];
  const c: Contestant = { id, label: meta.label, kind: meta.kind, open, ...extra };
  if (id === 'redloop-naive') {
    c.countFor ??= naiveCount;
    c.note ??= 'awaits every command before sending the next';
  }
  if (id === 'redis-benchmark') {
    // The id stays (targets and published runs name it); the label says which tool ran.
    c.label = extra.label ?? `${serverBinaries().family}-benchmark (C)`;
    c.unavailable = redisBenchmarkMissing;
    c.external = true;
    c.note ??= 'self-reported, replies unchecked';
  }
  return c;
}

/**
 * redis-benchmark reports its rate from a millisecond clock: a run of a few ms prints "inf".
 * It runs at least `min` requests (same command, same pipeline depth), so its rate means
 * something; the table shows how many it ran.
 */
export function atLeast(min: number): (count: number) => number {
  return (count) => Math.max(count, min);
}

/** Untimed helper: a session whose close is a no-op. */
export function sessionOf(run: Session['run'], close: Session['close'] = async () => {}): Session {
  return { run, close };
}

/** Runs `body` once per window of `ctx.window` ops (the last one may be shorter), in turn. */
export async function inWindows(ctx: RunContext, body: (start: number, size: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < ctx.count; start += ctx.window) await body(start, Math.min(ctx.window, ctx.count - start));
}
