/**
 * The loop's send path for targets with a client-side cache (and for `{ cache }` asked of any
 * target). A hit is answered here, before anything is encoded: a Future settled with the cached
 * reply, the connection untouched. A miss is encoded and handed to the cache front, which sends
 * it tracked; every other command lets the front drop the keys it writes, then goes out as usual.
 * Targets without a cache never come here (the loop checks one property).
 */
import { Future } from './future.js';
import type { CommandTarget } from '../connection/target.js';
import type { Encoded } from '../protocol/encoder.js';
import type { ReplySink } from '../base/reply-sink.js';
import { modeOf } from '../cache/store.js';
import type { Hit } from '../cache/connection-cache.js';
import { CACHE_FRONT } from '../cache/hub.js';

/** What a target's cache front does (ConnectionCache, RouterCache). */
export interface CacheFront {
  readonly auto: boolean;
  /** The `bigInt` and `resp3` the target's replies are decoded with when a command does not say. */
  readonly defaultBigInt: boolean;
  readonly defaultResp3: boolean;
  /** The decoding mode of a command sent without options. */
  readonly defaultMode: number;
  /** True while cached reads must wait (the command table, or a router's slot map, unknown). */
  readonly waiting: boolean;
  park(resume: (err: Error | undefined) => void): void;
  /** Commands parked, in order, while a cached read waits for the command table (or slot map). */
  parked: Array<(err: Error | undefined) => void> | undefined;
  hit(name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number): Hit | undefined;
  read(encoded: Encoded, sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number, explicit: boolean): boolean;
  beforeSend(name: string, args: ArrayLike<unknown>, from: number): void;
}

export interface CacheSendOptions {
  returnBuffers?: boolean | undefined;
  bigInt?: boolean | undefined;
  resp3?: boolean | undefined;
  cache?: boolean | number | undefined;
}

/** What the loop lends this path: encoding and per-command options, as for any command. */
export interface CacheSendLoop {
  /** Encodes and applies options to `future`; undefined when `future` was rejected instead. */
  prepare(target: CommandTarget, future: Future<unknown>, name: string, args: ArrayLike<unknown>, from: number, options: object | undefined): Encoded | undefined;
  reportUnobserved(future: Future<unknown>): void;
  /** The uncached send path (traced when redloop:command has subscribers). */
  sendPlain<T>(target: CommandTarget, name: string, args: ArrayLike<unknown>, from: number, options: object | undefined, bad: Error | undefined, parked: Future<T> | undefined): Future<T>;
}

export function frontOf(target: CommandTarget): CacheFront | undefined {
  return (target as unknown as Record<symbol, CacheFront | undefined>)[CACHE_FRONT];
}

export function sendCached<T>(loop: CacheSendLoop, target: CommandTarget, front: CacheFront | undefined,
  name: string, args: ArrayLike<unknown>, from: number, options: CacheSendOptions | undefined, parked?: Future<T>): Future<T> {
  const want = options === undefined ? undefined : options.cache;
  let maxAge = 0;
  let explicit = false;
  if (want === true) {
    explicit = true;
  } else if (want !== undefined && want !== false) {
    explicit = true;
    {
      if (typeof want !== 'number' || !(want > 0) || !Number.isFinite(want)) {
        return rejected(loop, target, name, options, parked, new TypeError(`cache must be true, false or a positive number of ms (the most an entry may be aged), got ${String(want)}`));
      }
      maxAge = want;
    }
  }
  if (front === undefined) {
    if (explicit) return rejected(loop, target, name, options, parked, new TypeError(`${String(name).toUpperCase()}: this target has no cache; pass cache: { ... } to connect(), cluster() or shards() (or the loop's defaults)`));
    return loop.sendPlain(target, name, args, from, options, undefined, parked);
  }
  const caching = explicit || (want !== false && front.auto);
  // A cached read waits for the command table (what is cacheable, which keys); what is sent
  // after it waits behind it, so the order of the wire is the order of the calls.
  if (front.parked !== undefined || (caching && front.waiting)) {
    return park(loop, target, front, name, args, from, options, parked, options?.returnBuffers ?? target.defaultReturnBuffers, caching);
  }

  if (!caching) {
    // Not a cached read: its keys leave the cache if it writes them, then it goes out as usual.
    front.beforeSend(name, args, from);
    return loop.sendPlain(target, name, args, from, options, undefined, parked);
  }
  let mode = 0;
  {
    mode = options === undefined || (options.returnBuffers === undefined && options.bigInt === undefined && options.resp3 === undefined)
      ? front.defaultMode
      : modeOf(options.returnBuffers ?? target.defaultReturnBuffers, options.bigInt ?? front.defaultBigInt, options.resp3 ?? front.defaultResp3);
    const hit = front.hit(name, args, from, mode, maxAge);
    if (hit !== undefined) {
      // Every hit of an entry shares one settled Future: nothing is made per hit.
      if (parked === undefined && hit.handle !== undefined) return hit.handle as Future<T>;
      const f = parked ?? new Future<T>(name, options?.returnBuffers ?? target.defaultReturnBuffers, loop);
      f.resolveReply(hit.value);
      if (parked === undefined) hit.handle = f;
      return f;
    }
  }
  const future = parked ?? new Future<T>(name, options?.returnBuffers ?? target.defaultReturnBuffers, loop);
  const encoded = loop.prepare(target, future as Future<unknown>, name, args, from, options);
  if (encoded === undefined) return future;
  if (caching && front.read(encoded, future, name, args, from, mode, maxAge, explicit)) return future;
  front.beforeSend(name, args, from);
  target.submit(encoded, future, name, args, from);
  return future;
}

function park<T>(loop: CacheSendLoop, target: CommandTarget, front: CacheFront, name: string, args: ArrayLike<unknown>, from: number,
  options: CacheSendOptions | undefined, parked: Future<T> | undefined, returnBuffers: boolean, caching: boolean): Future<T> {
  const future = parked ?? new Future<T>(name, returnBuffers, loop);
  const kept = Array.prototype.slice.call(args, from); // the caller may reuse its array
  const item = (err: Error | undefined): void => {
    if (err !== undefined && caching) future.rejectReply(err);
    else sendCached(loop, target, front, name, kept, 0, options, future);
  };
  const queue = front.parked;
  if (queue !== undefined) {
    queue.push(item);
    return future;
  }
  front.parked = [item];
  front.park((err) => {
    const q = front.parked!;
    front.parked = undefined;
    for (let i = 0; i < q.length; i++) {
      const again = front.parked as Array<(err: Error | undefined) => void> | undefined;
      if (again !== undefined) {
        again.push(...q.slice(i)); // parked again: the rest stays behind it, in order
        return;
      }
      q[i]!(err);
    }
  });
  return future;
}

function rejected<T>(loop: CacheSendLoop, target: CommandTarget, name: string, options: CacheSendOptions | undefined, parked: Future<T> | undefined, err: Error): Future<T> {
  const f = parked ?? new Future<T>(typeof name === 'string' ? name : '?', options?.returnBuffers ?? target.defaultReturnBuffers, loop);
  f.rejectReply(err);
  return f;
}
