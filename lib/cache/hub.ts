/**
 * CacheHub: a loop's caches. One NodeCache per server address, shared by every connection of
 * the loop to it (a connection, a cluster's node connection, a shard); the command table that
 * says what is cacheable and what writes which keys (read once, from the first connection that
 * needs it); and the commands that wait for that table.
 */
import type { ResolvedCacheOptions, CacheControl, CacheStats } from '../base/cache-options.js';
import type { ReplySink } from '../base/reply-sink.js';
import type { Encoded } from '../protocol/encoder.js';
import { encodeCommand } from '../protocol/encoder.js';
import { CallbackSink } from '../connection/callback-sink.js';
import { Connection } from '../connection/connection.js';
import { kCacheFront } from '../base/internal.js';
import { NodeCache } from './store.js';
import { ConnectionCache, type CacheEvents } from './connection-cache.js';
import type { CommandClassifier } from './classify.js';

/** The property of a target (Connection, Cluster, ShardSet) that holds its cache front. */
export const CACHE_FRONT = kCacheFront;

// Every Connection has the property (undefined unless a cache is attached): the loop's send path
// reads it on one hidden class.
Object.defineProperty(Connection.prototype, CACHE_FRONT, { configurable: true, writable: true, value: undefined });
Object.defineProperty(Connection.prototype, 'cache', { configurable: true, writable: true, value: undefined });

export interface HubOwner extends CacheEvents {
  on(event: 'close', listener: (conn: Connection) => void): unknown;
}

/** Registers `onPush` for invalidation pushes on `conn`; false when it cannot get any (RESP2). */
export type PushListen = (conn: Connection, onPush: (frame: unknown) => void) => boolean;

export class CacheHub {
  private readonly nodes = new Map<string, NodeCache>();
  private tableValue: CommandClassifier | undefined;
  private loading = false;
  private parked: Array<(err: Error | undefined) => void> = [];

  constructor(
    private readonly owner: HubOwner,
    private readonly makeTable: (reply: unknown) => CommandClassifier,
    private readonly listen: PushListen,
  ) {
    owner.on('close', (conn: Connection) => (conn as unknown as Record<symbol, ConnectionCache | undefined>)[CACHE_FRONT]?.onClose());
  }

  get table(): CommandClassifier | undefined {
    return this.tableValue;
  }

  /** For routers, which read COMMAND themselves: the first table known serves every front. */
  offerTable(table: CommandClassifier): void {
    if (this.tableValue !== undefined) return;
    this.tableValue = table;
    this.release(undefined);
  }

  /** Whether a cache exists for this address (its other connections drop the keys they write). */
  has(address: string): boolean {
    return this.nodes.has(address);
  }

  /**
   * Gives `conn` its cache front: the node's cache (made with `config` if it is the first), and
   * the `cache` handle. `config` undefined: the connection only drops the keys it writes.
   */
  attach(conn: Connection, config: ResolvedCacheOptions | undefined): ConnectionCache {
    let node = this.nodes.get(conn.address);
    if (node === undefined && config !== undefined) {
      node = new NodeCache(conn.address, { maxBytes: config.maxBytes, ttl: config.ttl });
      this.nodes.set(conn.address, node);
    }
    const cc = new ConnectionCache(conn, node!, config, () => this.tableValue, this.owner, this.listen, (via, resume) => this.whenTable(via, resume));
    const target = conn as unknown as Record<PropertyKey, unknown>;
    target[CACHE_FRONT] = cc;
    if (config !== undefined) target.cache = nodeControl(node!);
    return cc;
  }

  /**
   * Runs `resume` once the command table is known (at once if it is), reading it on `via` if
   * nobody is yet; `resume` gets the error when it could not be read.
   */
  whenTable(via: Connection, resume: (err: Error | undefined) => void): void {
    if (this.tableValue !== undefined) {
      resume(undefined);
      return;
    }
    this.parked.push(resume);
    if (this.loading) return;
    this.loading = true;
    via.submit(encodeCommand('COMMAND', []) as Encoded, new CallbackSink('COMMAND', (err, reply) => {
      this.loading = false;
      if (this.tableValue !== undefined) return;
      if (err !== null) {
        this.release(err);
        return;
      }
      try {
        this.tableValue = this.makeTable(reply);
      } catch (e) {
        this.release(e as Error);
        return;
      }
      this.release(undefined);
    }) as ReplySink);
  }

  private release(err: Error | undefined): void {
    const parked = this.parked;
    this.parked = [];
    for (const resume of parked) resume(err);
  }
}

/** The `cache` handle of one node's cache. */
export function nodeControl(node: NodeCache): CacheControl {
  return {
    get stats(): CacheStats {
      return node.stats;
    },
    clear(): void {
      node.clear();
    },
  };
}

/** The `cache` handle over several nodes' caches (a cluster's, a shard set's): summed, cleared together. */
export function groupControl(nodes: () => Iterable<NodeCache>): CacheControl {
  return {
    get stats(): CacheStats {
      const sum: CacheStats = { hits: 0, misses: 0, invalidations: 0, evictions: 0, entries: 0, bytes: 0 };
      for (const n of nodes()) {
        const s = n.stats;
        for (const k of Object.keys(sum) as Array<keyof CacheStats>) sum[k] += s[k];
      }
      return sum;
    },
    clear(): void {
      for (const n of nodes()) n.clear();
    },
  };
}
