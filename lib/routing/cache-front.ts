/**
 * The client-side cache in front of a cluster or shard set: a read is answered from the cache of
 * the node that owns its slot, or sent there tracked (straight to that node's connection, with
 * its CACHING YES and PTTLs); a redirection on the way (MOVED, ASK, a node gone) sends it again
 * through the router, uncached. MGET: each key its own entry, only the misses sent, one MGET per
 * slot. Writes drop their keys from their node's cache before they go; slots that change owner
 * are dropped from every node's cache.
 */
import type { ReplySink } from '../base/reply-sink.js';
import type { ResolvedCacheOptions } from '../base/cache-options.js';
import { ConnectionClosedError, ReplyError, ClientStateError } from '../base/errors.js';
import type { Encoded } from '../protocol/encoder.js';
import type { Connection } from '../connection/connection.js';
import { CACHE_FRONT, groupControl } from '../cache/hub.js';
import { ConnectionCache, MGET_KEY, dropWrittenKeys, isMget, type Hit } from '../cache/connection-cache.js';
import { MISS, argLookup, canonicalKey, lookupKey, modeOf, type NodeCache } from '../cache/store.js';
import { cacheableKeys, uncacheableReason, writeEffect } from '../cache/classify.js';
import { MgetAssembly, RequestSink, type CachedRequest } from '../cache/request.js';
import { SlotRouter } from './router.js';
import { keySlot } from './slot.js';

// Every router has the property (undefined unless it has a cache): the loop's send path reads it.
Object.defineProperty(SlotRouter.prototype, CACHE_FRONT, { configurable: true, writable: true, value: undefined });
Object.defineProperty(SlotRouter.prototype, 'cache', { configurable: true, writable: true, value: undefined });

const REDIRECTED = new Set(['MOVED', 'ASK', 'TRYAGAIN', 'CLUSTERDOWN']);

function cacheOf(conn: Connection | undefined): ConnectionCache | undefined {
  return conn === undefined ? undefined : (conn as unknown as Record<symbol, ConnectionCache | undefined>)[CACHE_FRONT];
}

export class RouterCache {
  /** One MGET per node for a shard set (any keys may share a server), per slot on a cluster. */
  private readonly groupBySlot: boolean;
  /** Commands parked behind a cached read waiting for the slot map (cached-send.ts). */
  parked: Array<(err: Error | undefined) => void> | undefined = undefined;
  readonly defaultBigInt: boolean;
  readonly defaultResp3: boolean;
  readonly defaultMode: number;

  constructor(readonly router: SlotRouter, readonly config: ResolvedCacheOptions, kind: 'cluster' | 'shard set', defaultBigInt: boolean, defaultResp3: boolean) {
    this.groupBySlot = kind === 'cluster';
    this.defaultBigInt = defaultBigInt;
    this.defaultResp3 = defaultResp3;
    this.defaultMode = modeOf(router.defaultReturnBuffers, defaultBigInt, defaultResp3);
    router.onSlotsMoved = (slots) => {
      const moved = new Set(slots);
      for (const node of this.nodes()) node.dropSlots((s) => moved.has(s));
    };
    (router as unknown as Record<PropertyKey, unknown>).cache = groupControl(() => this.nodes());
  }

  get auto(): boolean {
    return this.config.auto;
  }

  /** Commands wait here (in order) until the router can route and the command table is known. */
  get waiting(): boolean {
    return !this.router.canRouteBlocks;
  }

  park(resume: (err: Error | undefined) => void): void {
    this.router.whenReady().then(() => resume(undefined), (err: Error) => resume(err));
  }

  private *nodes(): Iterable<NodeCache> {
    const seen = new Set<NodeCache>();
    for (const conn of this.router.masterConnections) {
      const cc = cacheOf(conn);
      if (cc !== undefined && !seen.has(cc.node)) {
        seen.add(cc.node);
        yield cc.node;
      }
    }
  }

  private cacheForSlot(slot: number): ConnectionCache | undefined {
    return cacheOf(this.router.connectionForSlot(slot));
  }

  hit(name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number): Hit | undefined {
    if (args.length <= from) return undefined;
    if (isMget(name)) {
      // All keys cached, or it is read()'s (a partial hit): checked first, so only a full hit counts.
      const n = args.length - from;
      const nodes = new Array<NodeCache>(n);
      const lookups = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const a = args[from + i];
        const lookup = argLookup(a);
        const cc = this.cacheForSlot(keySlot(a));
        if (lookup === undefined || cc === undefined || !cc.node.has(mode, MGET_KEY, lookup, maxAge)) return undefined;
        nodes[i] = cc.node;
        lookups[i] = lookup;
      }
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = nodes[i]!.get(mode, MGET_KEY, lookups[i]!, maxAge);
      return { value: out, handle: undefined };
    }
    const table = this.router.commandTable;
    if (table === undefined) return undefined;
    const info = table.lookup(name, args, from);
    if (info === undefined) return undefined;
    let first = from;
    if (!info.firstArgIsTheKey) {
      const keys = table.keyIndices(info, args, from);
      if (keys.length === 0) return undefined;
      first = keys[0]!;
    }
    const cc = this.cacheForSlot(keySlot(args[first]));
    if (cc === undefined) return undefined;
    const lookup = lookupKey(args, from);
    return lookup === undefined ? undefined : cc.node.entry(mode, name, lookup, maxAge);
  }

  beforeSend(name: string, args: ArrayLike<unknown>, from: number): void {
    const table = this.router.commandTable;
    if (table === undefined) return;
    const info = table.lookup(name, args, from);
    if (info === undefined || writeEffect(info) === 'none') return;
    if (info.firstArgIsTheKey) {
      if (args.length > from) this.cacheForSlot(keySlot(args[from]))?.node.invalidate(canonicalKey(args[from]));
      return;
    }
    const keys = table.keyIndices(info, args, from);
    if (keys.length === 0) {
      // A keyless write (FLUSHALL...) goes to one node, but may change any: clear them all.
      for (const node of this.nodes()) dropWrittenKeys(node, table, info, args, from);
      return;
    }
    for (const k of keys) this.cacheForSlot(keySlot(args[k]))?.node.invalidate(canonicalKey(args[k]));
  }

  read(encoded: Encoded, sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number, explicit: boolean): boolean {
    const table = this.router.commandTable!;
    const info = table.lookup(name, args, from);
    const keyIdx = cacheableKeys(table, info, uncacheableReason(info, name), args, from);
    if (typeof keyIdx === 'string') {
      if (!explicit) return false;
      sink.rejectReply(new TypeError(keyIdx));
      return true;
    }
    if (this.config.prefixes !== undefined) {
      for (const k of keyIdx) {
        const key = canonicalKey(args[k]);
        if (!this.config.prefixes.some((p) => key.startsWith(p))) {
          if (!explicit) return false;
          sink.rejectReply(new TypeError(`${name.toUpperCase()} of ${key} cannot be cached: the key is under none of cache.prefixes (broadcast mode tracks only those)`));
          return true;
        }
      }
    }
    if (isMget(name)) return this.mgetRead(sink, name, args, keyIdx, mode, maxAge);
    const slot = keySlot(args[keyIdx[0]!]);
    for (let k = 1; k < keyIdx.length; k++) if (keySlot(args[keyIdx[k]!]) !== slot) return false; // the router refuses or splits it
    const cc = this.cacheForSlot(slot);
    if (cc === undefined || !cc.caching || !cc.ensureTracking()) return false;
    const lookup = lookupKey(args, from)!;
    const shared = maxAge === 0 ? cc.node.pending(mode, name, lookup) : undefined;
    if (shared !== undefined) {
      shared.waiters.push(sink);
      return true;
    }
    const p = cc.node.begin(mode, name, lookup, keyIdx.map((k) => canonicalKey(args[k])), cc.ttlFor(maxAge), slot);
    p.waiters.push(sink);
    cc.sendRequest([p], false, name, encoded, keyIdx.map((k) => args[k]), sink, [name, ...Array.prototype.slice.call(args, from)], this.fallback);
    return true;
  }

  private mgetRead(sink: ReplySink, name: string, args: ArrayLike<unknown>, keyIdx: readonly number[], mode: number, maxAge: number): boolean {
    // Group the keys by the node cache (and slot, on a cluster) they belong to, in order.
    const groups = new Map<string, { cc: ConnectionCache; slot: number; idx: number[]; positions: number[] }>();
    const caches: ConnectionCache[] = [];
    for (let i = 0; i < keyIdx.length; i++) {
      const slot = keySlot(args[keyIdx[i]!]);
      const cc = this.cacheForSlot(slot);
      if (cc === undefined || !cc.caching || argLookup(args[keyIdx[i]!]) === undefined) return false;
      caches.push(cc);
      const id = this.groupBySlot ? `${slot}` : `${cc.conn.id}`;
      let g = groups.get(id);
      if (g === undefined) groups.set(id, g = { cc, slot: this.groupBySlot ? slot : -1, idx: [], positions: [] });
      g.idx.push(keyIdx[i]!);
      g.positions.push(i);
    }
    for (const cc of caches) if (!cc.ensureTracking()) return false;
    const whole = new MgetAssembly(sink, new Array(keyIdx.length), keyIdx.length);
    for (const g of groups.values()) {
      g.cc.mgetInto(whole, 0, args, g.idx, mode, maxAge, this.groupBySlot ? g.slot : keySlot(args[g.idx[0]!]), this.fallback, name, sink, g.positions);
    }
    return true;
  }

  /** A tracked read that met a redirection or a node going away: sent again through the router, uncached. */
  private readonly fallback = (err: Error, req: CachedRequest): boolean => {
    const redirected = err instanceof ReplyError ? REDIRECTED.has(err.code)
      : (err instanceof ConnectionClosedError && !err.written) || err instanceof ClientStateError;
    if (!redirected || this.router.isClosed) return false;
    this.router.submit(req.encoded, new Redelivery(req, err), req.command, req.argv, 1);
    return true;
  };
}

/** The reply of a read sent again through the router, to the callers of the tracked one. */
class Redelivery extends RequestSink {
  constructor(req: CachedRequest, private readonly first: Error) { super(req); }
  protected onReply(reply: unknown): void { this.req.deliver(reply); }
  protected onError(err: Error): void { this.req.rejectAll(err ?? this.first); }
}
