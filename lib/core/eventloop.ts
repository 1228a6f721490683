/**
 * EventLoop: owns every connection, validates and encodes commands, flushes every dirty
 * connection once per tick, reports errors nobody listened for, and closes everything.
 */
import { EventEmitter } from 'eventemitter3';
import { inspect } from 'node:util';
import { Connection, type ConnectionObserver, type ReconnectingInfo } from '../connection/connection.js';
import { Future } from './future.js';
import { checkTraceArgs, TracedFuture, type TraceArgs } from './tracing.js';
import { commandChannel } from '../base/channels.js';
import { kAddPushListener, kCommandTimedOut, kConnect, kFlush, kScheduleFlush } from '../base/internal.js';
import type { CommandTarget } from '../connection/target.js';
import { checkCommandName, encodeCommand, type Arg } from '../protocol/encoder.js';
import type { CheckedArgs } from './args.js';
import { commandOptionsError, concealSecrets, resolveOptions, type ConnectionOptions } from '../base/options.js';
import { ClientStateError, ConfigError, TimeoutError } from '../base/errors.js';

/** What loop.send() (and tx.send()) take per command. */
const COMMAND_OPTIONS = ['timeout', 'returnBuffers', 'bigInt', 'resp3', 'cache'] as const;
import { massInsert, type MassInsertOptions, type MassInsertReport, type MassInsertSource } from '../features/massinsert/massinsert.js';
import { Cluster, type ClusterOptions } from '../routing/cluster/cluster.js';
import { ShardSet } from '../routing/shards.js';
import { Sentinel, type SentinelConfig, type SentinelOptions } from '../routing/sentinel/sentinel.js';
import { checkTarget } from '../routing/targets.js';
import { subscribe, type Channel, type Subscription, type SubscribeOptions } from '../features/pubsub/pubsub.js';
import { hscan, scan, sscan, zscan, type KeyScanOptions, type ScanIterator, type ScanOptions } from '../features/scan/scan.js';
import { multi, type BlockCommand, type MultiOptions } from '../features/multi.js';
import { batch } from '../features/batch.js';
import { script as makeScript, type Script } from '../features/scripts.js';
import { withConnection, type LendOptions } from '../features/transactions/pool.js';
import { transaction, type Transaction, type TransactionOptions } from '../features/transactions/transaction.js';
import type { Settled } from '../features/batch.js';
import { CacheHub, CACHE_FRONT } from '../cache/hub.js';
import { resolveCacheOptions, type CacheOptions } from '../base/cache-options.js';
import { CommandTable } from '../routing/commands.js';
import { RouterCache } from '../routing/cache-front.js';
import { SentinelCache } from '../routing/sentinel/cache-front.js';
import { sendCached, type CacheFront } from './cached-send.js';
import type { Encoded } from '../protocol/encoder.js';

/** Options for one command, for `loop.send()`. */
export interface CommandOptions {
  /** Decode this reply's strings as Buffers (overrides the connection's setting). */
  returnBuffers?: boolean | undefined;
  /** Decode this reply's integers as bigints, exact beyond 2^53 (overrides the connection's setting). */
  bigInt?: boolean | undefined;
  /**
   * Decode this reply's RESP3 types natively (Map, Set, number, boolean, bigint; see
   * docs/resp3.md) instead of in their RESP2 shapes (overrides the connection's setting).
   * No effect on a connection that speaks RESP2.
   */
  resp3?: boolean | undefined;
  /** ms to wait for this reply (overrides commandTimeout; uses a timer of its own). */
  timeout?: number | undefined;
  /**
   * Answer from the target's client-side cache (docs/cache.md): true, or the most ms an entry
   * may have been kept; false to bypass `cache.auto`. Only read-only commands with keys.
   */
  cache?: boolean | number | undefined;
}

/** The loop's options: defaults for every connect(), and what applies to the loop itself. */
export interface EventLoopOptions extends ConnectionOptions {
  /**
   * What `redloop:command` messages keep of a command's arguments (docs/tracing.md): 'redacted'
   * (default) the keys, values replaced by '?'; 'full' all of them; 'none' none. Passwords
   * (AUTH, HELLO ... AUTH, MIGRATE ... AUTH, CONFIG SET requirepass, ACL SETUSER) never appear.
   */
  traceArgs?: TraceArgs | undefined;
}

export type { ReconnectingInfo };

/** Events the loop emits; every connection event names its connection. */
export interface EventLoopEvents {
  connect: (conn: Connection) => void;
  ready: (conn: Connection) => void;
  error: (err: Error, conn: Connection) => void;
  close: (conn: Connection, reason: Error) => void;
  reconnecting: (info: ReconnectingInfo, conn: Connection) => void;
  /** The connection is closed for good. */
  end: (conn: Connection) => void;
  /** A cluster's slot map changed (first read, resharding, failover), or a sentinel target's master or replicas. */
  topology: (target: Cluster | Sentinel) => void;
  /** A command failed and nobody had awaited its future by the next macrotask. */
  unobservedError: (err: Error, command: string) => void;
}

/** Registers the cache's invalidation handler for a connection's push frames; false when it speaks RESP2. */
function listenForPushes(conn: Connection, onPush: (frame: unknown) => void): boolean {
  if (conn.resolvedOptions.protocol !== 3) return false;
  conn[kAddPushListener]((frame) => onPush(frame));
  return true;
}

export class EventLoop extends EventEmitter<EventLoopEvents> {
  private readonly defaults: ConnectionOptions;
  /** The client-side caches, made with the first target that has one. */
  private cacheHub: CacheHub | undefined;
  private readonly traceArgs: TraceArgs;
  private readonly owned = new Set<Connection>();
  /** Clusters, shard sets and sentinel targets: they hold timers and waiting commands of their own. */
  private readonly routers = new Set<Cluster | ShardSet | Sentinel>();
  private dirty: Connection[] = [];
  private flushQueued = false;
  private unobserved: Future<unknown>[] = [];
  private unobservedCheck: NodeJS.Immediate | undefined;
  private unobservedCount = 0;
  private closed = false;
  /** close() waits for clusters and shard sets to send what they hold; they may still open node connections. */
  private settlingRouters = false;

  /** `options` apply to every connect() of this loop (e.g. commandTimeout, reconnect), and `traceArgs` to the loop. */
  constructor(options: EventLoopOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw new ConfigError(`new EventLoop() takes an options object, got ${options === null ? 'null' : typeof options}`);
    const { traceArgs, ...defaults } = options;
    this.traceArgs = checkTraceArgs(traceArgs);
    resolveOptions({}, defaults); // validate now, not at the first connect
    this.defaults = concealSecrets(defaults); // kept for every connect(): no password in clear
  }

  /** Opens a connection (a URL or options). Commands may be sent at once: they wait in the offline queue. */
  connect(target: string | ConnectionOptions = {}): Connection {
    return this[kConnect](target, undefined);
  }

  /** @internal loop.connect() for a layer's own connection: `observer` hears of its lifecycle, not of every connection's. */
  [kConnect](target: string | ConnectionOptions, observer: ConnectionObserver | undefined): Connection {
    if (this.closed && !this.settlingRouters) throw new ClientStateError('connect(): this EventLoop is closed');
    const resolved = resolveOptions(target, this.defaults);
    const conn = new Connection(this, resolved, observer);
    if (resolved.cache !== undefined || this.cacheHub?.has(conn.address)) this.hub().attach(conn, resolved.cache);
    this.owned.add(conn);
    conn.whenClosed().then(() => this.owned.delete(conn));
    return conn;
  }

  /**
   * A Redis Cluster as one target: one reachable seed (URL or options) is enough; every node
   * is opened with the seed's credentials and TLS under `options` (connect()'s options plus
   * readFrom, refreshInterval, maxRedirections, clusterDownTimeout, natMap). Commands may be
   * sent at once: they wait for the slot map, then go out in order.
   */
  cluster(seeds: ReadonlyArray<string | ConnectionOptions>, options?: ClusterOptions): Cluster {
    if (this.closed) throw new ClientStateError('cluster(): this EventLoop is closed');
    const cluster = new Cluster(this, seeds, options);
    this.routers.add(cluster);
    const cache = resolveCacheOptions(options?.cache ?? this.defaults.cache);
    if (cache !== undefined) this.attachRouterCache(cluster, cache, 'cluster', options?.bigInt ?? this.defaults.bigInt ?? false, options?.resp3 ?? this.defaults.resp3 ?? false);
    return cluster;
  }

  /**
   * The master of a Sentinel-watched deployment as one target: the sentinels (`config`, with
   * their own credentials and TLS) name it, ROLE confirms it, and commands follow it through
   * failovers (held while one is under way, then sent to the new master in order). `options`
   * are connect()'s for every data node, plus readFrom, refreshInterval, failoverTimeout, natMap.
   */
  sentinel(config: SentinelConfig, options?: SentinelOptions): Sentinel {
    if (this.closed) throw new ClientStateError('sentinel(): this EventLoop is closed');
    const target = new Sentinel(this, config, options);
    const cache = resolveCacheOptions(options?.cache ?? this.defaults.cache);
    // Each master's connection has its own cache front; the target's hands cached reads to the current master's.
    if (cache !== undefined) new SentinelCache(target, cache, options?.bigInt ?? this.defaults.bigInt ?? false, options?.resp3 ?? this.defaults.resp3 ?? false);
    this.routers.add(target);
    return target;
  }

  /**
   * A client-side shard set over standalone servers (URLs, options or Connections of this
   * loop), keys placed by hash slot as a Redis Cluster with these masters, in this order, would.
   */
  shards(members: ReadonlyArray<string | ConnectionOptions | Connection>, options: { cache?: CacheOptions | boolean | undefined } = {}): ShardSet {
    if (this.closed) throw new ClientStateError('shards(): this EventLoop is closed');
    if (!Array.isArray(members) || members.length === 0) throw new ConfigError('shards() needs at least one server: URLs, connection options or Connections');
    if (options === null || typeof options !== 'object') throw new ConfigError('shards() options must be an object ({ cache })');
    const cache = resolveCacheOptions(options.cache ?? this.defaults.cache);
    const conns = members.map((m, i) => {
      if (m instanceof Connection) {
        if (m.loop !== this) throw new ConfigError(`shards(): member ${i} is a Connection of another EventLoop`);
        if (cache !== undefined && (m as { cache?: unknown }).cache === undefined) this.hub().attach(m, cache);
        return m;
      }
      if (cache === undefined) return this.connect(m);
      return this.connect(typeof m === 'string' ? { url: m, cache } : { cache, ...m });
    });
    const set = new ShardSet(this, conns);
    this.routers.add(set);
    if (cache !== undefined) this.attachRouterCache(set, cache, 'shard set', conns[0]!.resolvedOptions.bigInt, conns[0]!.resolvedOptions.resp3);
    return set;
  }

  private hub(): CacheHub {
    this.cacheHub ??= new CacheHub(this as never, (reply) => new CommandTable(reply), listenForPushes);
    return this.cacheHub;
  }

  private attachRouterCache(router: Cluster | ShardSet, cache: NonNullable<ReturnType<typeof resolveCacheOptions>>, kind: 'cluster' | 'shard set', bigInt: boolean, resp3: boolean): void {
    const hub = this.hub();
    (router as unknown as Record<symbol, unknown>)[CACHE_FRONT] = new RouterCache(router, cache, kind, bigInt, resp3);
    // Its command table serves the node connections' own fronts too (writes sent to them directly).
    router.whenReady().then(() => {
      const table = router.commandTable;
      if (table !== undefined) hub.offerTable(table);
    }, () => {});
  }

  /** The connections this loop owns that are not closed for good. */
  get connections(): Connection[] {
    return [...this.owned];
  }

  /** @internal True once close() or disconnect() was called (features with connections of their own end with it). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Failed futures nobody awaited. */
  get unobservedErrors(): number {
    return this.unobservedCount;
  }

  /**
   * Encodes the command now and queues it on the target's connection; it is written with
   * everything else sent in this tick. Never throws: bad input rejects the returned future.
   */
  sendCommand<T = any, A extends readonly unknown[] = Arg[]>(target: CommandTarget, name: string, ...args: CheckedArgs<A>): Future<T> {
    return this.dispatch<T>(target, name, args, 0, undefined);
  }

  /** Like sendCommand, with the command as an array and per-command options. */
  send<T = any, A extends readonly unknown[] = Arg[]>(target: CommandTarget, command: readonly [string, ...CheckedArgs<A>], options?: CommandOptions): Future<T> {
    if (!Array.isArray(command)) {
      const f = new Future<T>('?', false, this);
      f.rejectReply(new TypeError(`send(): the command must be an array like ['GET', 'key'], got ${typeof command}`));
      return f;
    }
    return this.dispatch<T>(target, command[0], command, 1, options);
  }

  private dispatch<T>(target: CommandTarget, name: string, args: ArrayLike<unknown>, from: number, options: CommandOptions | undefined): Future<T> {
    const bad = this.checkTarget(target) ?? checkCommandName(name);
    // Options that are not an object are refused by sendPlain (applyOptions), cached target or not.
    if (bad === undefined && (options === undefined || (options !== null && typeof options === 'object'))) {
      // Targets with a cache, and { cache } asked of any: see cached-send.ts. One property read otherwise.
      const front = (target as unknown as Record<symbol, CacheFront | undefined>)[CACHE_FRONT];
      if (front !== undefined || (options !== undefined && options.cache !== undefined)) return sendCached<T>(this, target, front, name, args, from, options);
    }
    return this.sendPlain<T>(target, name, args, from, options, bad, undefined);
  }

  /**
   * @internal The send path without the cache (cached-send.ts comes back here for what it does
   * not answer itself): `bad` is the target's or name's error, `parked` a future made already.
   */
  sendPlain<T>(target: CommandTarget, name: string, args: ArrayLike<unknown>, from: number, options: CommandOptions | undefined, bad: Error | undefined, parked: Future<T> | undefined): Future<T> {
    const returnBuffers = options?.returnBuffers ?? (bad === undefined && target.defaultReturnBuffers);
    // The one check tracing costs a command when nobody listens (docs/tracing.md).
    const traced = parked === undefined && commandChannel.hasSubscribers;
    const future = parked ?? (traced
      ? new TracedFuture<T>(typeof name === 'string' ? name : '?', returnBuffers, this)
      : new Future<T>(typeof name === 'string' ? name : '?', returnBuffers, this));
    if (bad !== undefined) {
      future.rejectReply(bad);
      return future;
    }
    const encoded = encodeCommand(name, args, from);
    if (typeof encoded !== 'string' && !Array.isArray(encoded)) {
      future.rejectReply(encoded);
      return future;
    }
    if (options !== undefined) {
      const err = this.applyOptions(target, future, options);
      if (err !== undefined) {
        future.rejectReply(err);
        return future;
      }
    }
    if (options?.timeout === undefined && target.commandTimeout !== 0) {
      future.deadline = Date.now() + target.commandTimeout;
    }
    if (traced) {
      const t = future as TracedFuture<T>;
      t.begin(target, name, args, from, this.traceArgs);
      target.submit(encoded, future, name, args, from);
      t.sent();
      return future;
    }
    target.submit(encoded, future, name, args, from);
    return future;
  }

  /** @internal Encodes a command and applies its options to `future` (cached-send.ts); undefined once `future` is rejected. */
  prepare(target: CommandTarget, future: Future<unknown>, name: string, args: ArrayLike<unknown>, from: number, options: CommandOptions | undefined): Encoded | undefined {
    const encoded = encodeCommand(name, args, from);
    if (typeof encoded !== 'string' && !Array.isArray(encoded)) {
      future.rejectReply(encoded);
      return undefined;
    }
    if (options !== undefined) {
      const err = this.applyOptions(target, future, options);
      if (err !== undefined) {
        future.rejectReply(err);
        return undefined;
      }
    }
    if (options?.timeout === undefined && target.commandTimeout !== 0) future.deadline = Date.now() + target.commandTimeout;
    return encoded as Encoded;
  }

  private checkTarget(target: CommandTarget): Error | undefined {
    if (this.closed) return new ClientStateError('this EventLoop is closed; create a new one');
    return checkTarget(target, this);
  }

  private applyOptions(target: CommandTarget, future: Future<unknown>, options: CommandOptions): Error | undefined {
    const bad = commandOptionsError(options, COMMAND_OPTIONS);
    if (bad !== undefined) return bad;
    const { timeout, bigInt, resp3 } = options;
    if (bigInt !== undefined) future.bigInt = bigInt;
    if (resp3 !== undefined) future.resp3 = resp3;
    if (timeout === undefined || timeout === 0) return undefined;
    future.timer = setTimeout(() => {
      future.rejectReply(new TimeoutError(`${future.command}: no reply within ${timeout}ms; its reply will be read and dropped`));
      target[kCommandTimedOut]?.(future); // resetOnTimeout applies to per-command timeouts too
    }, timeout);
    return undefined;
  }

  /** Resolves when the target has room again (see maxPending and maxBufferedBytes). */
  drain(target: CommandTarget): Promise<void> {
    const bad = this.checkTarget(target);
    return bad === undefined ? target.waitForRoom() : Promise.reject(bad);
  }

  /**
   * Writes every command of `source` (argument arrays, or RESP bytes from a byte stream) as
   * fast as the socket takes them, pulling from the source only while there is room, and
   * resolves once every reply is read, with counts and the first failures by index.
   */
  massInsert(target: CommandTarget, source: MassInsertSource, options?: MassInsertOptions): Promise<MassInsertReport> {
    return massInsert(this, target, source, options);
  }

  /**
   * Subscribes to channels (and `patterns`, `sharded` channels) on connections of the
   * subscription's own, opened like the target's. See Subscription for events and `for await`.
   */
  subscribe(target: CommandTarget, channels: readonly Channel[], options?: SubscribeOptions): Subscription {
    this.assertTarget(target);
    return subscribe(this, target, channels, options);
  }

  /**
   * SCAN as an async iterable of keys: a connection's keyspace, or every master of a cluster or
   * shard set (`parallel` at a time, default all). The next SCAN is sent while you handle the
   * current batch.
   */
  scan(target: CommandTarget, options?: ScanOptions): ScanIterator<string | Buffer> {
    this.assertTarget(target);
    return scan(target, options);
  }

  /** HSCAN as an async iterable of [field, value]. */
  hscan(target: CommandTarget, key: string | Buffer, options?: KeyScanOptions): ScanIterator<[string | Buffer, string | Buffer]> {
    this.assertTarget(target);
    return hscan(target, key, options);
  }

  /** SSCAN as an async iterable of members. */
  sscan(target: CommandTarget, key: string | Buffer, options?: KeyScanOptions): ScanIterator<string | Buffer> {
    this.assertTarget(target);
    return sscan(target, key, options);
  }

  /** ZSCAN as an async iterable of [member, score]. */
  zscan(target: CommandTarget, key: string | Buffer, options?: KeyScanOptions): ScanIterator<[string | Buffer, number]> {
    this.assertTarget(target);
    return zscan(target, key, options);
  }

  /** For the methods that return an object, not a future: a bad target throws at once. */
  private assertTarget(target: CommandTarget): void {
    const bad = this.checkTarget(target);
    if (bad !== undefined) throw bad;
  }

  /**
   * An atomic block: MULTI, `commands`, EXEC written contiguously on the target's connection
   * (on a cluster or shard set all keys must share a slot). Resolves to EXEC's replies, server
   * errors at their positions as ReplyError; rejects with ExecAbortError if one was refused.
   */
  multi(target: CommandTarget, commands: readonly BlockCommand[], options?: MultiOptions): Future<unknown[] | null> {
    return multi(this, target, commands, options);
  }

  /**
   * Sends every command at once (spread over the nodes of a cluster or shard set, in parallel)
   * and resolves to one outcome per command, in order: { ok: true, value } or { ok: false, error }.
   */
  batch(target: CommandTarget, commands: ReadonlyArray<readonly [string, ...Arg[]]>): Promise<Settled[]> {
    return batch(this, target, commands);
  }

  /**
   * A Lua script object: script.run(target, keys, args) sends EVALSHA, and EVAL where the node
   * answers NOSCRIPT; routed by its keys on a cluster or shard set.
   */
  script(source: string): Script {
    return makeScript(this, source);
  }

  /**
   * Optimistic locking: `fn` gets a dedicated connection (from a small pool per node) to the
   * node that serves `key`; WATCH lives only there. When tx.exec() answers null (a WATCHed key
   * changed) `fn` runs again, up to maxAttempts. The connection goes back clean.
   */
  transaction<T>(target: CommandTarget, key: Arg | null, fn: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T> {
    return transaction(this, target, key, fn, options);
  }

  /**
   * `fn` gets a dedicated connection (from the same pool) to the node that serves `key`: for
   * blocking commands (BLPOP, XREAD BLOCK...) that would hold up a shared connection.
   */
  withConnection<T>(target: CommandTarget, key: Arg | null, fn: (conn: Connection) => T | Promise<T>, options?: LendOptions): Promise<T> {
    return withConnection(this, target, key, fn, options);
  }

  /** @internal Called by a connection that has bytes to write this tick. */
  [kScheduleFlush](conn: Connection): void {
    this.dirty.push(conn);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(this.flushAll);
    }
  }

  private readonly flushAll = (): void => {
    this.flushQueued = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (let i = 0; i < dirty.length; i++) dirty[i]![kFlush]();
  };

  /**
   * @internal A future was rejected before anybody awaited it. Checked one macrotask later,
   * so that code which awaits it a little later is not reported.
   */
  reportUnobserved(future: Future<unknown>): void {
    this.unobserved.push(future);
    this.unobservedCheck ??= setImmediate(this.checkUnobserved);
  }

  private readonly checkUnobserved = (): void => {
    this.unobservedCheck = undefined;
    const list = this.unobserved;
    this.unobserved = [];
    for (const f of list) {
      if (f.observed) continue;
      this.unobservedCount++;
      this.emit('unobservedError', f.error!, f.command);
    }
  };

  /** Graceful: waits for every queued and in-flight reply, then QUITs every connection. */
  async close(): Promise<void> {
    this.closed = true;
    // Commands sent to a cluster or shard set before it knew its servers are still held there,
    // and a cluster follows redirections (MOVED, fences, TRYAGAIN) of what was sent before:
    // they go out first (or fail, as they would have, when no server answers).
    this.settlingRouters = true;
    try {
      await Promise.all([...this.routers].map((r) => r.settle()));
    } finally {
      this.settlingRouters = false;
    }
    for (const r of this.routers) r.close();
    await Promise.all([...this.owned].map((c) => c.close()));
    if (this.unobservedCheck !== undefined) {
      clearImmediate(this.unobservedCheck);
      this.checkUnobserved();
    }
  }

  /** Immediate: destroys every socket; what was not answered rejects. */
  disconnect(): void {
    this.closed = true;
    for (const r of this.routers) r.close();
    for (const c of this.owned) c.disconnect();
  }

  [inspect.custom](): string {
    return `EventLoop <${this.owned.size} connection(s)${this.closed ? ', closed' : ''}>`;
  }
}
