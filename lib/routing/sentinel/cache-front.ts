/**
 * The client-side cache through a sentinel target. A sentinel resolves to one master
 * connection, and that connection has its own cache front (lib/cache: tracking, invalidation
 * pushes, flushed when its socket closes); this front hands every cached read to the front of
 * the master the target sends to now, and to no other.
 *
 * Only while the target sends straight to a checked master: from the moment a failover is
 * announced until the new master is checked, a cached read is neither answered from memory nor
 * sent tracked; it waits with the other commands and goes to the new master uncached. The old
 * master's entries are dropped when the master changes (its connection's close drops them too),
 * so the cache of a master that was replaced never answers.
 */
import type { ReplySink } from '../../base/reply-sink.js';
import type { ResolvedCacheOptions } from '../../base/cache-options.js';
import type { Encoded } from '../../protocol/encoder.js';
import type { Connection } from '../../connection/connection.js';
import { CACHE_FRONT, groupControl } from '../../cache/hub.js';
import type { ConnectionCache, Hit } from '../../cache/connection-cache.js';
import { modeOf, type NodeCache } from '../../cache/store.js';
import { kWatchTopology } from '../../base/internal.js';
import { Sentinel, kServingConnection } from './sentinel.js';

// Every sentinel target has the properties (undefined unless it has a cache): one hidden class.
Object.defineProperty(Sentinel.prototype, CACHE_FRONT, { configurable: true, writable: true, value: undefined });
Object.defineProperty(Sentinel.prototype, 'cache', { configurable: true, writable: true, value: undefined });

function cacheOf(conn: Connection | undefined): ConnectionCache | undefined {
  return conn === undefined ? undefined : (conn as unknown as Record<symbol, ConnectionCache | undefined>)[CACHE_FRONT];
}

export class SentinelCache {
  /** Commands parked behind a cached read waiting for the master or the command table (cached-send.ts). */
  parked: Array<(err: Error | undefined) => void> | undefined = undefined;
  readonly defaultBigInt: boolean;
  readonly defaultResp3: boolean;
  readonly defaultMode: number;
  /** The master whose cache served last: dropped when another one takes over. */
  private lastNode: NodeCache | undefined;
  private lastConn: Connection | undefined;

  constructor(readonly target: Sentinel, readonly config: ResolvedCacheOptions, defaultBigInt: boolean, defaultResp3: boolean) {
    this.defaultBigInt = defaultBigInt;
    this.defaultResp3 = defaultResp3;
    this.defaultMode = modeOf(target.defaultReturnBuffers, defaultBigInt, defaultResp3);
    const self = target as unknown as Record<PropertyKey, unknown>;
    self[CACHE_FRONT] = this;
    self.cache = groupControl(() => this.nodes());
    target[kWatchTopology](() => this.onTopology());
  }

  get auto(): boolean {
    return this.config.auto;
  }

  /** The cache of the master the target sends to now, when it sends straight to one. */
  private serving(): ConnectionCache | undefined {
    const cc = cacheOf(this.target[kServingConnection]());
    return cc !== undefined && cc.caching ? cc : undefined;
  }

  /** Before the first master is known, and while its command table is unknown, cached reads wait. */
  get waiting(): boolean {
    const master = this.target.masterConnections[0];
    if (master === undefined) return true;
    const cc = cacheOf(master);
    return cc !== undefined && cc.waiting;
  }

  park(resume: (err: Error | undefined) => void): void {
    this.target.whenReady().then(() => {
      const cc = cacheOf(this.target.masterConnections[0]);
      if (cc !== undefined && cc.waiting) cc.park(resume);
      else resume(undefined);
    }, (err: Error) => resume(err));
  }

  private *nodes(): Iterable<NodeCache> {
    const cc = cacheOf(this.target.masterConnections[0]);
    if (cc !== undefined) yield cc.node;
  }

  hit(name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number): Hit | undefined {
    return this.serving()?.hit(name, args, from, mode, maxAge);
  }

  read(encoded: Encoded, sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number, explicit: boolean): boolean {
    const cc = this.serving();
    // No master to send to straight (a failover): sent through the target, uncached.
    return cc === undefined ? false : cc.read(encoded, sink, name, args, from, mode, maxAge, explicit);
  }

  beforeSend(name: string, args: ArrayLike<unknown>, from: number): void {
    cacheOf(this.target.masterConnections[0])?.beforeSend(name, args, from);
  }

  /** A new master (or first discovery): what the previous master's cache holds is dropped. */
  private onTopology(): void {
    const conn = this.target.masterConnections[0];
    if (conn === this.lastConn) return;
    if (this.lastNode !== undefined && this.lastNode !== cacheOf(conn)?.node) this.lastNode.clear();
    this.lastConn = conn;
    this.lastNode = cacheOf(conn)?.node;
  }
}
