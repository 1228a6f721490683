/**
 * Sentinel: one target for the master of a Sentinel-watched deployment, a master that moves.
 * Commands go to the connection of the master the sentinels name and ROLE confirms; while a
 * failover is under way they wait here, and go to the new master in the order they were sent.
 *
 * Why writes are held from the moment a failover is announced, not from the switch: during a
 * failover the old master stays writable until the sentinels reconfigure it, some seconds
 * after the replica was promoted, and every write it acknowledges then is gone once it
 * replicates from the new master. So the first event of a failover (+try-failover and the
 * failover-state events, published only by the sentinel that leads it, which is why every
 * known sentinel is watched) stops new commands from reaching the old master.
 *
 * What is never done: sending again a command that was written to a master that then went
 * away. It may have run: it rejects with ConnectionClosedError (written: true). A command
 * that came back unwritten, or that met READONLY (refused, so not applied), is sent to the
 * new master, before the commands that were held after it.
 */
import { inspect } from 'node:util';
import Denque from 'denque';
import pDefer, { type DeferredPromise } from 'p-defer';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Connection, ConnectionObserver, PushHandler } from '../../connection/connection.js';
import type { CommandTarget } from '../../connection/target.js';
import { currentConnection } from '../../connection/current.js';
import { kConnect, kSetPushHandler, kWatchTopology } from '../../base/internal.js';
import { CallbackSink } from '../../connection/callback-sink.js';
import type { ReplySink } from '../../base/reply-sink.js';
import type { Encoded } from '../../protocol/encoder.js';
import { parseRedisUrl, type ConnectionOptions, type Secret } from '../../base/options.js';
import {
  AuthError, ClientStateError, ConfigError, ConnectionClosedError, ReplyError, RoutingError, TimeoutError, isUnwritten,
} from '../../base/errors.js';
import { CommandFlag, CommandTable } from '../commands.js';
import { ask } from '../ask.js';
import type { NodeAddress } from '../cluster/topology.js';
import { fieldsOf, parseSentinelEvent, type SentinelEvent } from './events.js';
import type { CacheControl } from '../../base/cache-options.js';
import { topologyChannel, type CommandMessage, type TopologyMessage } from '../../base/channels.js';

/** @internal The master's connection while commands go straight to it (no failover under way), else undefined: the cache front reads it. */
export const kServingConnection: unique symbol = Symbol('redloop.sentinelServing');

export type SentinelReadFrom = 'master' | 'replica' | 'prefer-replica';

/** Where the sentinels are and how to reach them (their own credentials and TLS). */
export interface SentinelConfig {
  /** At least one sentinel: `redis://[:pass@]host:port` URLs or { host, port }. The others are learned. */
  sentinels: ReadonlyArray<string | { host: string; port: number | string }>;
  /** The master's name in the sentinels' configuration (`sentinel monitor <name> ...`). */
  name: string;
  /** The sentinels' own AUTH password (their requirepass), apart from the data nodes'. */
  sentinelPassword?: string | Secret | undefined;
  /** The sentinels' ACL user, with sentinelPassword. */
  sentinelUsername?: string | undefined;
  /** TLS to the sentinels: true or node:tls options (a `rediss://` sentinel URL sets true). */
  sentinelTls?: boolean | TlsOptions | undefined;
  /** ms a sentinel (or a candidate master's ROLE) may take to answer before the next one is asked. Default 2000. */
  sentinelTimeout?: number | undefined;
}

/** connect()'s options, for every data node (master and replicas), plus: */
export interface SentinelOptions extends ConnectionOptions {
  /**
   * Where read-only commands (by the server's command flags) go: 'master' (default),
   * 'replica' (the replicas in turn, the master when there is none) or 'prefer-replica' (a
   * replica whose connection is ready, else the master).
   */
  readFrom?: SentinelReadFrom;
  /** ms between checks of the master (sentinels asked, ROLE checked) when nothing else asks for one; 0 for never. Default 30000. */
  refreshInterval?: number;
  /**
   * Longest a command waits here for a master (a failover, every sentinel and the master
   * unreachable) before it rejects, unwritten; also the longest writes are held for a failover
   * that does not complete. Default 10000, enough for an automatic failover.
   */
  failoverTimeout?: number;
  /**
   * Addresses the sentinels announce mapped to addresses this client can reach:
   * `{ '10.0.0.5:6379': { host: '127.0.0.1', port: 7000 } }` or a function. Applies to the
   * master, the replicas and the sentinels learned from SENTINEL SENTINELS.
   */
  natMap?: Record<string, NodeAddress> | ((address: NodeAddress) => NodeAddress);
}

/** What a sentinel target needs from the loop that owns it. */
export interface SentinelOwner {
  /** Opens a connection of the loop; `observer` hears of that connection's lifecycle only. */
  [kConnect](options: ConnectionOptions, observer: ConnectionObserver | undefined): Connection;
  emit(event: string, ...args: unknown[]): boolean;
}

export interface SentinelReplicaInfo {
  host: string;
  port: number;
  /** Whether this client's connection to it is ready (false when it has none: readFrom 'master'). */
  ready: boolean;
}

export interface SentinelStats {
  /** Times the master changed (first discovery excluded). */
  failovers: number;
  /** Discoveries completed (sentinel asked, ROLE checked). */
  discoveries: number;
  /** Commands that waited here (failover, no master yet). */
  held: number;
  /** Commands sent again after READONLY or after they came back unwritten. */
  resent: number;
  /** Sentinel events about this master received. */
  events: number;
}

/** How often discovery is retried while there is no usable master (commands wait). */
const DOWN_POLL_MS = 200;
/** Backoff bounds while every sentinel fails, with a working master. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2000;

/** A command on its way to the master (or a replica): sees its failure before the caller does. */
class SentinelSink implements ReplySink {
  /** When it started to wait here (0 while it is not waiting). */
  since = 0;
  /** The connection it was last handed to. */
  conn: Connection | undefined;
  // Copied, not forwarded: the connection reads them for every command (decoder mode).
  readonly command: string;
  readonly returnBuffers: boolean;
  readonly bigInt: boolean | undefined;
  constructor(
    readonly target: Sentinel,
    readonly user: ReplySink,
    readonly encoded: Encoded,
    /** A command of its own (not a piece of a MULTI block): may be sent again alone after READONLY. */
    readonly single: boolean,
    /** Sent to a replica (readFrom). */
    readonly toReplica: boolean,
  ) {
    this.command = user.command;
    // A piece of a MULTI block: its collector names the command whose reply comes next.
    if (!single) Object.defineProperty(this, 'command', { get: () => user.command });
    this.returnBuffers = user.returnBuffers;
    this.bigInt = user.bigInt;
  }
  get deadline(): number { return this.user.deadline; }
  set deadline(ms: number) { this.user.deadline = ms; }
  get settled(): boolean { return this.user.settled; }
  // Passed on as ForwardingSink does: a traced command is marked written (and where) through
  // this sink; a per-command resp3 and a MULTI block's names reach the connection's decoder.
  get trace(): CommandMessage | undefined { return this.user.trace; }
  get resp3(): boolean | undefined { return this.user.resp3; }
  get blockNames(): readonly string[] | undefined { return this.user.blockNames; }
  resolveReply(reply: unknown): void { this.user.resolveReply(reply); }
  rejectReply(err: Error): void { this.target.onFailure(this, err); }
}

interface SentinelEntry {
  key: string;
  host: string;
  port: number;
  /** Per-sentinel options from its URL (credentials, TLS). */
  options: ConnectionOptions;
  query: Connection | undefined;
  watch: Connection | undefined;
}

interface Replica {
  key: string;
  host: string;
  port: number;
  conn: Connection | undefined;
}

export class Sentinel implements CommandTarget {
  readonly loop: unknown;
  /** The default command timeout (ms, 0 for none) of commands sent through this target (the `commandTimeout` option). */
  readonly commandTimeout: number;
  /** Whether replies decode strings as Buffers by default (the `returnBuffers` option). */
  readonly defaultReturnBuffers: boolean;
  /** The master's name in the sentinels' configuration. */
  readonly name: string;
  private readonly owner: SentinelOwner;
  private readonly template: ConnectionOptions;
  private readonly sentinelBase: ConnectionOptions;
  private readonly sentinelTimeout: number;
  private readonly readFrom: SentinelReadFrom;
  private readonly failoverTimeout: number;
  private readonly natMap: SentinelOptions['natMap'];
  private readonly maxHeld: number;

  private readonly sentinelList: SentinelEntry[] = [];
  private masterConn: Connection | undefined;
  /**
   * The master's connection while commands may go straight to it (checked, ready, nothing
   * held, no failover announced); undefined otherwise. One test on the hot path instead of six.
   */
  private direct: Connection | undefined;
  private readonly readsToReplicas: boolean;
  private masterKey: string | undefined;
  private masterAddr: NodeAddress | undefined;
  private replicaList: Replica[] = [];
  private nextReplica = 0;
  private table: CommandTable | undefined;
  private loadingTable = false;

  /** Commands that wait for a master, in the order they were sent. */
  private held = new Denque<SentinelSink>();
  /** Commands that came back from a connection (unwritten, READONLY): they go before `held`. */
  private returned: SentinelSink[] = [];
  /** When a failover was announced (writes are held until a master other than `failoverFrom` is checked), 0 if none. */
  private failoverSince = 0;
  private failoverFrom: string | undefined;
  /** Only objectively down so far (no failover started): -odown releases. */
  private failoverOnlyOdown = false;
  /** A retired master connection is being closed: nothing is released until it is. */
  private switching = false;
  /** The master answered READONLY: it is not one any more, even if the sentinels still say so. */
  private demotedKey: string | undefined;

  private discovering = false;
  private discoverAgain = false;
  private hint: NodeAddress | undefined;
  private discoveryFailures = 0;
  private lastDiscoveryError: Error | undefined;
  /** A definitive answer (unknown name, bad password): new commands fail at once while it lasts. */
  private fatal: Error | undefined;
  private everDiscovered = false;
  private readonly startedAt = Date.now();

  private refreshTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly topologyWatchers = new Set<() => void>();
  private ready: DeferredPromise<void> | undefined;
  private settleWaiters: Array<() => void> = [];
  private roomWaiters: Array<() => void> = [];
  private readonly counters: SentinelStats = { failovers: 0, discoveries: 0, held: 0, resent: 0, events: 0 };
  /** ROLE and sentinel queries in flight, by connection: failed at once when it is lost. */
  private readonly askers = new Map<Connection, Set<(err: Error) => void>>();
  /**
   * Told of the lifecycle of the connections this target opens (sentinels, master, replicas),
   * and of no other: a loop with many connections does not call every target for each one.
   */
  private readonly observer: ConnectionObserver = {
    onReady: (conn) => this.onConnectionReady(conn),
    onClose: (conn, reason) => {
      this.onConnectionClose(conn);
      this.failAskers(conn, reason ?? new Error('connection lost'));
    },
    onEnd: (conn) => this.failAskers(conn, new ClientStateError(`connection to ${conn.address} closed`)),
  };

  /** @internal use loop.sentinel() */
  constructor(owner: SentinelOwner, config: SentinelConfig, options: SentinelOptions = {}) {
    if (config === null || typeof config !== 'object') throw new ConfigError("sentinel(): the first argument must be { sentinels: ['redis://host:26379', ...], name: 'mymaster' }");
    const { sentinels, name, sentinelPassword, sentinelUsername, sentinelTls, sentinelTimeout = 2000, ...rest } = config;
    for (const k of Object.keys(rest)) throw new ConfigError(`sentinel(): unknown sentinel option "${k}" (known: sentinels, name, sentinelPassword, sentinelUsername, sentinelTls, sentinelTimeout)`);
    if (!Array.isArray(sentinels) || sentinels.length === 0) {
      throw new ConfigError("sentinel(): `sentinels` needs at least one sentinel address, e.g. ['redis://127.0.0.1:26379']");
    }
    if (typeof name !== 'string' || name === '') throw new ConfigError("sentinel(): `name` must be the master's name in the sentinels' configuration, e.g. 'mymaster'");
    if (typeof sentinelTimeout !== 'number' || !(sentinelTimeout > 0) || !Number.isFinite(sentinelTimeout)) throw new ConfigError(`sentinelTimeout must be a positive number of ms, got ${String(sentinelTimeout)}`);
    if (options === null || typeof options !== 'object') throw new ConfigError('sentinel(): options must be an object');
    const { readFrom = 'master', refreshInterval = 30_000, failoverTimeout = 10_000, natMap, ...connOptions } = options;
    if (!['master', 'replica', 'prefer-replica'].includes(readFrom)) throw new ConfigError(`readFrom must be 'master', 'replica' or 'prefer-replica', got ${String(readFrom)}`);
    for (const [k, v] of Object.entries({ refreshInterval, failoverTimeout })) {
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ConfigError(`${k} must be a non-negative number of ms, got ${String(v)}`);
    }
    if (natMap !== undefined && typeof natMap !== 'function' && (typeof natMap !== 'object' || natMap === null)) throw new ConfigError('natMap must be an object or a function');
    if (connOptions.host !== undefined || connOptions.port !== undefined || connOptions.path !== undefined || connOptions.url !== undefined) {
      throw new ConfigError('sentinel(): the data nodes are found through the sentinels: give no host, port, path or url in the options (credentials, TLS, db... apply to every data node)');
    }
    this.owner = owner;
    this.loop = owner;
    this.name = name;
    this.readFrom = readFrom;
    this.readsToReplicas = readFrom !== 'master';
    this.failoverTimeout = failoverTimeout;
    this.natMap = natMap;
    this.sentinelTimeout = sentinelTimeout;
    this.template = connOptions;
    this.commandTimeout = connOptions.commandTimeout ?? 0;
    this.defaultReturnBuffers = connOptions.returnBuffers ?? false;
    this.maxHeld = connOptions.maxOfflineQueue ?? 100_000;
    this.sentinelBase = {
      username: sentinelUsername, password: sentinelPassword, tls: sentinelTls,
      connectTimeout: Math.max(sentinelTimeout, 1000),
      // A sentinel that is down fails our queries at once after its first failed reconnect:
      // the next sentinel is asked instead of waiting for this one.
      reconnect: { initialDelay: 100, maxDelay: 2000, failQueuedAfter: 1 },
    };
    sentinels.forEach((s, i) => {
      let opts: ConnectionOptions;
      if (typeof s === 'string') {
        try { opts = parseRedisUrl(s); } catch (err) { throw new ConfigError(`sentinel(): sentinels[${i}]: ${(err as Error).message}`); }
      } else if (s !== null && typeof s === 'object' && typeof s.host === 'string') {
        opts = { host: s.host, port: s.port };
      } else {
        throw new ConfigError(`sentinel(): sentinels[${i}] must be a URL or { host, port }`);
      }
      const port = Number(opts.port ?? 26379);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(`sentinel(): sentinels[${i}] has no valid port`);
      const { host = '127.0.0.1', port: _p, db: _db, ...creds } = opts;
      this.addSentinel({ host, port }, creds);
    });

    if (refreshInterval > 0) {
      this.refreshTimer = setInterval(() => this.discover(), refreshInterval);
      this.refreshTimer.unref();
    }
    for (const s of this.sentinelList) this.watch(s);
    this.discover();
  }

  // ---------------------------------------------------------------- public view


  /** The master now serving ({ host, port }), once discovered and checked; undefined until then or during a failover. */
  get master(): NodeAddress | undefined {
    if (this.masterAddr === undefined || this.failoverSince !== 0 || this.switching) return undefined;
    return { ...this.masterAddr };
  }

  /** The replicas the sentinels list as up, with whether this client's connection to each is ready. */
  get replicas(): SentinelReplicaInfo[] {
    return this.replicaList.map((r) => ({ host: r.host, port: r.port, ready: r.conn?.state === 'ready' }));
  }

  /** The sentinels known (given and learned), "host:port", the last one that answered first. */
  get sentinels(): string[] {
    return this.sentinelList.map((s) => s.key);
  }

  get stats(): SentinelStats {
    return { ...this.counters };
  }

  /** Resolves once a master is known and checked (commands need not wait for it). */
  whenReady(): Promise<void> {
    if (this.closed) return Promise.reject(new ClientStateError(`sentinel target '${this.name}' is closed`));
    if (this.masterConn !== undefined && this.everDiscovered) return Promise.resolve();
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    this.ready ??= pDefer<void>();
    return this.ready.promise;
  }

  /** The master's connection, as a list (what features that fan out over masters expect). */
  get masterConnections(): Connection[] {
    return this.masterConn !== undefined && this.everDiscovered ? [this.masterConn] : [];
  }

  /** The master's connection, whatever the key (one server holds every key). */
  connectionFor(_key?: unknown): Connection {
    if (this.masterConn === undefined || !this.everDiscovered) throw new RoutingError(`no master of '${this.name}' is known yet; await whenReady() first`);
    return this.masterConn;
  }

  /**
   * The master and the replicas as a cluster lists its nodes (the master serving every slot),
   * so features written for clusters (SCAN over masters) find the master after a failover.
   */
  get nodes(): Array<{ address: string; role: 'master' | 'replica'; slots: Array<[number, number]> }> {
    const out: Array<{ address: string; role: 'master' | 'replica'; slots: Array<[number, number]> }> = [];
    if (this.masterKey !== undefined) out.push({ address: this.masterKey, role: 'master', slots: [[0, 16383]] });
    for (const r of this.replicaList) out.push({ address: r.key, role: 'replica', slots: [] });
    return out;
  }

  /** @internal For features that need the connection itself (lending pool, mass insertion). */
  async [currentConnection](): Promise<Connection> {
    await this.whenReady();
    return this.connectionFor();
  }

  /** The client-side cache of the master this target sends to (`cache` option), else undefined. See docs/cache.md. */
  declare readonly cache: CacheControl | undefined;

  /** @internal See kServingConnection. */
  [kServingConnection](): Connection | undefined {
    return this.direct;
  }

  /** Asks the sentinels again and checks the master (also done on events, on errors and every refreshInterval). */
  refresh(): void {
    this.discover();
  }

  // ---------------------------------------------------------------- sending

  submit(encoded: Encoded, sink: ReplySink, name?: string, args?: ArrayLike<unknown>, from?: number): void {
    if (this.readsToReplicas && args !== undefined && this.table !== undefined && this.replicaList.length !== 0) {
      const info = this.table.lookup(name!, args, from!);
      if (info !== undefined && (info.flags & CommandFlag.ReadOnly) !== 0 && (info.flags & CommandFlag.Write) === 0) {
        const conn = this.replicaConnection();
        if (conn !== undefined) {
          const s = new SentinelSink(this, sink, encoded, true, true);
          s.conn = conn;
          conn.submit(encoded, s);
          return;
        }
      }
    }
    const s = new SentinelSink(this, sink, encoded, args !== undefined, false);
    const conn = this.direct;
    if (conn !== undefined) {
      // If the socket died and no 'close' was heard yet, the connection gives the command back
      // unwritten (or writes it after reconnecting to the same master): either is safe.
      s.conn = conn;
      conn.submit(encoded, s);
      return;
    }
    this.hold(s);
  }

  /** A replica's connection for a read, or undefined for the master. */
  private replicaConnection(): Connection | undefined {
    const list = this.replicaList;
    for (let tries = 0; tries < list.length; tries++) {
      const r = list[this.nextReplica++ % list.length]!;
      if (r.conn === undefined || r.conn.state === 'closed') r.conn = this.connect({ ...this.template, host: r.host, port: r.port });
      if (this.readFrom === 'replica' || r.conn.state === 'ready') return r.conn;
    }
    return undefined;
  }

  private hold(s: SentinelSink, returned = false): void {
    this.direct = undefined; // what comes next waits behind it
    if (this.closed) {
      s.user.rejectReply(new ClientStateError(`${s.command}: sentinel target '${this.name}' is closed`));
      return;
    }
    if (this.fatal !== undefined) {
      s.user.rejectReply(new ConnectionClosedError(this.fatal.message, s.command, false));
      return;
    }
    if (!returned && this.held.length >= this.maxHeld) {
      s.user.rejectReply(new ClientStateError(`${s.command}: ${this.held.length} commands already wait for the master of '${this.name}' (maxOfflineQueue)`));
      return;
    }
    if (s.since === 0) s.since = Date.now();
    s.conn = undefined;
    this.counters.held++;
    if (returned) this.returned.push(s);
    else this.held.push(s);
    this.armExpiry();
    // Whatever made it wait (no master yet, a failover, a connection lost or giving commands
    // back), discovery runs until it can be released.
    this.pollWhileWaiting();
  }

  /** @internal From a SentinelSink: an error reply or a failure of the connection it went to. */
  onFailure(s: SentinelSink, err: Error): void {
    if (s.user.settled) return;
    if (err instanceof ReplyError && err.code === 'READONLY' && !s.toReplica) {
      // The node we write to is a replica now: a failover we did not hear of. The command was
      // refused (not applied): it goes to the new master.
      const key = s.conn !== undefined ? this.keyOfConn(s.conn) : undefined;
      if (key !== undefined && key === this.masterKey) {
        this.demotedKey = key;
        this.beginFailover('READONLY');
      }
      if (s.single) {
        this.counters.resent++;
        this.hold(s, true);
        this.discover();
        return;
      }
      this.discover();
      s.user.rejectReply(err);
      return;
    }
    // Never written (errors.ts says which failures prove it): safe to send to the master that serves now.
    if (isUnwritten(err) && !this.closed) {
      this.counters.resent++;
      if (s.toReplica) {
        // A read: another replica or the master can take it now.
        this.submitAgain(s);
        return;
      }
      this.hold(s, true);
      this.discover();
      return;
    }
    s.user.rejectReply(err);
  }

  private submitAgain(s: SentinelSink): void {
    const conn = this.replicaConnection();
    if (conn !== undefined && conn !== s.conn && conn.state === 'ready') {
      s.conn = conn;
      conn.submit(s.encoded, s);
      return;
    }
    this.hold(new SentinelSink(this, s.user, s.encoded, true, false), true);
  }

  /** Sends what waits, in order, if a checked master is ready and no failover is under way. */
  private release(): void {
    const conn = this.masterConn;
    if (conn === undefined || conn.state !== 'ready' || this.failoverSince !== 0 || this.switching || this.closed || !this.everDiscovered) return;
    const returned = this.returned;
    this.returned = [];
    for (const s of returned) {
      if (s.user.settled) continue;
      s.since = 0;
      s.conn = conn;
      conn.submit(s.encoded, s);
    }
    while (this.held.length !== 0) {
      const s = this.held.shift()!;
      if (s.user.settled) continue;
      s.since = 0;
      s.conn = conn;
      conn.submit(s.encoded, s);
    }
    this.direct = conn;
    this.afterQueuesChanged();
  }

  private afterQueuesChanged(): void {
    if (this.held.length === 0 && this.returned.length === 0) {
      for (const w of this.settleWaiters.splice(0)) w();
      clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
    }
    if (this.held.length < this.maxHeld / 2) for (const w of this.roomWaiters.splice(0)) w();
  }

  waitForRoom(): Promise<void> {
    if (this.held.length >= this.maxHeld / 2) return new Promise((resolve) => this.roomWaiters.push(resolve));
    return this.masterConn !== undefined && this.masterConn.state !== 'closed' ? this.masterConn.waitForRoom() : Promise.resolve();
  }

  /** Rejects what waited longer than failoverTimeout (or past its own deadline), unwritten. */
  private armExpiry(): void {
    if (this.expiryTimer !== undefined || this.closed) return;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.expire();
      if (this.held.length !== 0 || this.returned.length !== 0) this.armExpiry();
    }, Math.min(250, Math.max(10, this.failoverTimeout / 4)));
    // Commands wait: the process stays up until they go out or reject (bounded by failoverTimeout).
  }

  private expire(): void {
    const now = Date.now();
    if (this.failoverSince !== 0 && now - this.failoverSince >= this.failoverTimeout) {
      // The announced failover did not bring a new master in time: take whatever checks out.
      this.endFailover();
      this.discover();
    }
    const why = (s: SentinelSink): Error | undefined => {
      if (s.user.deadline !== 0 && now >= s.user.deadline) return new TimeoutError(`${s.command}: no master of '${this.name}' within the command timeout (never written)`);
      if (now - s.since >= this.failoverTimeout) {
        return new ConnectionClosedError(`no master of '${this.name}' could take it within ${this.failoverTimeout}ms (failoverTimeout)${this.lastDiscoveryError !== undefined ? `: ${this.lastDiscoveryError.message}` : ''}`, s.command, false);
      }
      return undefined;
    };
    this.returned = this.returned.filter((s) => {
      if (s.user.settled) return false;
      const e = why(s);
      if (e !== undefined) s.user.rejectReply(e);
      return e === undefined;
    });
    if (this.held.length !== 0) {
      const keep = new Denque<SentinelSink>();
      for (const s of this.held.toArray()) {
        if (s.user.settled) continue;
        const e = why(s);
        if (e !== undefined) s.user.rejectReply(e);
        else keep.push(s);
      }
      this.held = keep;
    }
    this.afterQueuesChanged();
  }

  private rejectWaiting(err: (name: string) => Error): void {
    const all = [...this.returned, ...this.held.toArray()];
    this.returned = [];
    this.held.clear();
    for (const s of all) if (!s.user.settled) s.user.rejectReply(err(s.command));
    this.afterQueuesChanged();
  }

  // ---------------------------------------------------------------- failover

  private beginFailover(why: string): void {
    if (this.failoverSince === 0) {
      this.failoverSince = Date.now();
      this.direct = undefined;
      this.failoverFrom = this.masterKey;
      this.failoverOnlyOdown = why === 'odown';
    } else if (why !== 'odown') {
      this.failoverOnlyOdown = false;
    }
    this.pollWhileWaiting();
  }

  private endFailover(): void {
    this.failoverSince = 0;
    this.failoverFrom = undefined;
    this.failoverOnlyOdown = false;
  }

  private onSentinelEvent(e: SentinelEvent): void {
    this.counters.events++;
    // About the master we use (not an old one a late sentinel still talks about)?
    const aboutOurs = e.master !== undefined && this.masterKey !== undefined && keyOf(this.mapAddress(e.master)) === this.masterKey;
    switch (e.kind) {
      case 'failover-start':
      case 'odown':
        if (aboutOurs) this.beginFailover(e.kind === 'odown' ? 'odown' : e.channel);
        else this.discover();
        return;
      case 'odown-end':
        if (aboutOurs && this.failoverOnlyOdown) this.endFailover();
        this.discover();
        return;
      case 'promoted':
      case 'switch':
        if (aboutOurs) this.beginFailover(e.channel);
        this.discover(e.address !== undefined ? this.mapAddress(e.address) : undefined);
        return;
      case 'failover-abort':
        if (aboutOurs) this.endFailover();
        this.discover();
        return;
      case 'failover-end':
      case 'replica':
        this.discover();
        return;
      default:
    }
  }

  // ---------------------------------------------------------------- discovery

  /**
   * Asks the sentinels in turn for the master (after `hint`, an address an event named), checks
   * it with ROLE, and adopts it. One discovery at a time; asked again while one runs, it runs
   * once more after.
   */
  private discover(hint?: NodeAddress): void {
    if (this.closed) return;
    if (hint !== undefined) this.hint = hint;
    if (this.discovering) {
      this.discoverAgain = true;
      return;
    }
    this.discovering = true;
    this.runDiscovery().then(() => {
      this.discovering = false;
      if (this.closed) return;
      if (this.discoverAgain) {
        this.discoverAgain = false;
        this.discover();
      }
    }, (err: Error) => {
      // A bug here must not leave commands waiting forever: they expire, and this is said.
      this.discovering = false;
      this.owner.emit('error', err, this);
    });
  }

  private async runDiscovery(): Promise<void> {
    const tried: string[] = [];
    let definitive = 0;
    const hint = this.hint;
    this.hint = undefined;
    if (hint !== undefined) {
      const checked = await this.check(hint);
      if (this.closed) return;
      if (typeof checked !== 'string') {
        await this.adopt(hint, checked, undefined);
        return;
      }
      tried.push(`${hint.host}:${hint.port} (named by an event) ${checked}`);
    }
    const entries = this.orderedSentinels();
    for (const s of entries) {
      if (this.closed) return;
      const conn = this.queryConnection(s);
      let reply: unknown;
      try {
        reply = await ask(conn, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name], this.sentinelTimeout);
      } catch (err) {
        if (err instanceof AuthError || (err instanceof ReplyError && /NOAUTH|WRONGPASS|invalid password|auth/i.test(err.message))) definitive++;
        if (err instanceof ReplyError && /unknown command|unknown subcommand/i.test(err.message)) definitive++;
        tried.push(`${s.key} ${describe(err as Error)}`);
        continue;
      }
      if (this.closed) return;
      if (!Array.isArray(reply) || reply.length < 2) {
        definitive++;
        tried.push(`${s.key} does not monitor a master named '${this.name}'`);
        continue;
      }
      const addr = this.mapAddress({ host: String(reply[0]), port: Number(reply[1]) });
      const key = `${addr.host}:${addr.port}`;
      const [sentinels, replicas] = await Promise.all([
        ask(conn, ['SENTINEL', 'SENTINELS', this.name], this.sentinelTimeout).catch(() => undefined),
        ask(conn, ['SENTINEL', 'REPLICAS', this.name], this.sentinelTimeout).catch(() => undefined),
      ]);
      if (this.closed) return;
      if (Array.isArray(sentinels)) this.learnSentinels(sentinels);
      if (this.failoverSince !== 0 && key === this.failoverFrom) {
        tried.push(`${s.key} still names ${key}, the master being failed over`);
        continue;
      }
      if (key === this.demotedKey) {
        tried.push(`${s.key} names ${key}, which answered READONLY`);
        // Not definitive: the sentinels will catch up.
      }
      const checked = await this.check(addr);
      if (this.closed) return;
      if (typeof checked === 'string') {
        if (checked.startsWith('refused our credentials')) definitive++;
        tried.push(`${s.key} names ${key}, which ${checked}`);
        continue;
      }
      // This sentinel answered well: ask it first next time.
      const i = this.sentinelList.indexOf(s);
      if (i > 0) {
        this.sentinelList.splice(i, 1);
        this.sentinelList.unshift(s);
      }
      await this.adopt(addr, checked, Array.isArray(replicas) ? replicas : undefined);
      return;
    }
    this.discoveryFailed(tried, definitive === entries.length && entries.length !== 0);
  }

  /** Connects (or reuses the master's connection) and asks ROLE: the connection if it says master, else why not. */
  private async check(addr: NodeAddress): Promise<Connection | string> {
    const key = `${addr.host}:${addr.port}`;
    const current = key === this.masterKey ? this.masterConn : undefined;
    let conn: Connection;
    let fresh = false;
    if (current !== undefined && current.state !== 'closed') {
      if (current.state === 'reconnecting') return 'is unreachable (its connection is down)';
      conn = current;
    } else {
      conn = this.connect({ ...this.template, host: addr.host, port: addr.port });
      fresh = true;
    }
    let role: unknown;
    try {
      role = await this.askOrFail(conn, ['ROLE']);
    } catch (err) {
      if (fresh) conn.disconnect('not used as the master');
      return err instanceof AuthError ? `refused our credentials (${(err as Error).message})` : `did not answer ROLE (${describe(err as Error)})`;
    }
    const said = Array.isArray(role) ? String(role[0]) : String(role);
    if (said !== 'master') {
      if (fresh) conn.disconnect('not a master');
      return `says ROLE ${said}, not master`;
    }
    return conn;
  }

  /** ask(), failing as soon as the connection is lost before it is ready (a node that is down). */
  private askOrFail(conn: Connection, args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const set = this.askers.get(conn) ?? new Set<(err: Error) => void>();
      this.askers.set(conn, set);
      const fail = (err: Error): void => {
        done();
        reject(err);
      };
      const done = (): void => {
        set.delete(fail);
        if (set.size === 0 && this.askers.get(conn) === set) this.askers.delete(conn);
      };
      set.add(fail);
      ask(conn, args, this.sentinelTimeout).then((r) => {
        done();
        resolve(r);
      }, fail);
    });
  }

  private failAskers(conn: Connection, err: Error): void {
    const set = this.askers.get(conn);
    if (set === undefined) return;
    for (const fail of [...set]) fail(err);
  }

  /** A connection of this target's own, watched through the observer. */
  private connect(options: ConnectionOptions): Connection {
    return this.owner[kConnect](options, this.observer);
  }

  /** Makes `conn` (checked: ROLE master) the master's connection and sends what waited. */
  private async adopt(addr: NodeAddress, conn: Connection, replicas: unknown[] | undefined): Promise<void> {
    const key = `${addr.host}:${addr.port}`;
    const old = this.masterConn;
    const previousKey = this.masterKey;
    const changed = key !== this.masterKey;
    this.counters.discoveries++;
    this.discoveryFailures = 0;
    this.lastDiscoveryError = undefined;
    this.fatal = undefined;
    if (changed && this.failoverSince === 0 && this.masterKey !== undefined) this.failoverFrom = this.masterKey;
    if (changed) this.direct = undefined;
    this.masterConn = conn;
    this.masterKey = key;
    this.masterAddr = { ...addr };
    if (key !== this.demotedKey) this.demotedKey = undefined;
    let replicasChanged = false;
    if (replicas !== undefined) replicasChanged = this.learnReplicas(replicas, key);
    else this.replicaList = this.replicaList.filter((r) => r.key !== key);
    const first = !this.everDiscovered;
    this.everDiscovered = true;
    if (changed && old !== undefined) {
      this.counters.failovers++;
      // Nothing more goes to the old master. What it was sent and did not answer is rejected as
      // written (it may have run); what it still queued comes back unwritten, and goes out
      // first, before what was held here.
      this.switching = true;
      this.direct = undefined;
      this.endFailover();
      old.disconnect(`the master of '${this.name}' moved to ${key}`);
      await old.whenClosed();
      this.switching = false;
    } else if (changed || first) {
      this.endFailover();
    } else if (this.failoverSince !== 0 && this.failoverFrom !== key) {
      this.endFailover();
    }
    if (this.closed) return;
    if (changed || first || replicasChanged) this.topologyChanged(first ? 'discovery' : changed ? 'failover' : 'replicas', changed ? previousKey : undefined);
    this.loadTable();
    this.release();
    this.ready?.resolve();
    this.ready = undefined;
  }

  private discoveryFailed(tried: string[], definitive: boolean): void {
    this.discoveryFailures++;
    const err = new RoutingError(`no usable master named '${this.name}': ${tried.length === 0 ? 'no sentinel to ask' : `sentinels tried: ${tried.join('; ')}`}`);
    this.lastDiscoveryError = err;
    // During an announced failover the sentinels naming the old master is expected, not an error.
    if (this.failoverSince === 0 || Date.now() - this.failoverSince >= this.failoverTimeout) this.owner.emit('error', err, this);
    if (!this.everDiscovered && !definitive && Date.now() - this.startedAt >= this.failoverTimeout) {
      // Never found a master within failoverTimeout: whenReady() says so (commands expire on their own).
      this.ready?.reject(err);
      this.ready = undefined;
    }
    if (definitive && !this.everDiscovered) {
      // Every sentinel answered, and none can help (unknown name, our credentials refused):
      // say it now rather than after failoverTimeout.
      this.fatal = err;
      this.rejectWaiting((name) => new ConnectionClosedError(err.message, name, false));
      this.ready?.reject(err);
      this.ready = undefined;
    }
    // Keep trying, with backoff: a sentinel may come back, a master may be named.
    const waiting = this.held.length + this.returned.length !== 0 || this.ready !== undefined;
    const delay = waiting && !definitive ? DOWN_POLL_MS : Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.discoveryFailures, 5));
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.discover();
    }, delay);
    if (!waiting) this.pollTimer.unref();
  }

  /** While commands wait for a master, discovery runs again every DOWN_POLL_MS. */
  private pollWhileWaiting(): void {
    if (this.pollTimer !== undefined || this.closed) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      const waiting = this.held.length + this.returned.length !== 0 || this.failoverSince !== 0 || this.masterConn?.state !== 'ready';
      if (!waiting) return;
      this.discover();
      this.pollWhileWaiting();
    }, DOWN_POLL_MS);
    this.pollTimer.unref();
  }

  private loadTable(): void {
    if (this.readFrom === 'master' || this.table !== undefined || this.loadingTable || this.masterConn === undefined) return;
    this.loadingTable = true;
    ask(this.masterConn, ['COMMAND'], 10_000).then((reply) => {
      this.table = new CommandTable(reply);
    }, () => {}).finally(() => {
      this.loadingTable = false;
    });
  }

  /** Replaces the replica list with the sentinel's (those up and replicating); true if it changed. */
  private learnReplicas(entries: unknown[], masterKey: string): boolean {
    const next: Replica[] = [];
    for (const entry of entries) {
      const f = fieldsOf(entry);
      const flags = (f.get('flags') ?? '').split(',');
      if (flags.some((x) => x === 's_down' || x === 'o_down' || x === 'disconnected')) continue;
      if (f.get('master-link-status') !== undefined && f.get('master-link-status') !== 'ok') continue;
      if (f.get('role-reported') !== undefined && f.get('role-reported') !== 'slave') continue;
      const addr = this.mapAddress({ host: f.get('ip') ?? '', port: Number(f.get('port')) });
      const key = `${addr.host}:${addr.port}`;
      if (key === masterKey || addr.host === '' || !(addr.port > 0)) continue;
      const known = this.replicaList.find((r) => r.key === key);
      next.push(known ?? { key, host: addr.host, port: addr.port, conn: undefined });
    }
    for (const r of this.replicaList) {
      if (!next.includes(r) && r.conn !== undefined) void r.conn.close();
    }
    const changed = next.length !== this.replicaList.length || next.some((r, i) => r !== this.replicaList[i]);
    this.replicaList = next;
    if (this.readFrom !== 'master') for (const r of next) r.conn ??= this.connect({ ...this.template, host: r.host, port: r.port });
    return changed;
  }

  private learnSentinels(entries: unknown[]): void {
    for (const entry of entries) {
      // Every one is kept, even those flagged down or disconnected by this sentinel: we may
      // reach them, and those that do not answer are asked last.
      const f = fieldsOf(entry);
      const port = Number(f.get('port'));
      const host = f.get('ip');
      if (host === undefined || !(port > 0)) continue;
      const added = this.addSentinel(this.mapAddress({ host, port }), this.sentinelList[0]?.options ?? {});
      if (added !== undefined) this.watch(added);
    }
  }

  private addSentinel(addr: NodeAddress, options: ConnectionOptions): SentinelEntry | undefined {
    const key = `${addr.host}:${addr.port}`;
    if (this.sentinelList.some((s) => s.key === key)) return undefined;
    const entry: SentinelEntry = { key, host: addr.host, port: addr.port, options, query: undefined, watch: undefined };
    this.sentinelList.push(entry);
    return entry;
  }

  /** Sentinels whose connection is not down first (a down one is asked only when all are). */
  private orderedSentinels(): SentinelEntry[] {
    const up = this.sentinelList.filter((s) => s.query === undefined || s.query.state !== 'reconnecting');
    const down = this.sentinelList.filter((s) => !up.includes(s));
    return [...up, ...down];
  }

  private sentinelOptions(s: SentinelEntry): ConnectionOptions {
    return { ...this.sentinelBase, ...stripUndefined(s.options), ...stripUndefined({ username: this.sentinelBase.username, password: this.sentinelBase.password }), host: s.host, port: s.port, db: 0, cache: false };
  }

  private queryConnection(s: SentinelEntry): Connection {
    if (s.query === undefined || s.query.state === 'closed') s.query = this.connect(this.sentinelOptions(s));
    return s.query;
  }

  /** A connection of its own to `s`, in push mode, subscribed to every event (PSUBSCRIBE *). */
  private watch(s: SentinelEntry): void {
    if (this.closed) return;
    if (s.watch !== undefined && s.watch.state !== 'closed') return;
    // RESP2 on purpose: PSUBSCRIBE's one confirmation is then a reply its sink takes (and the
    // connection owes nothing once it is in), while the events, which no command waits for, go
    // to the push handler.
    const conn = this.connect({ ...this.sentinelOptions(s), protocol: 2 });
    s.watch = conn;
    const handler: PushHandler = {
      onPush: (reply) => {
        if (!Array.isArray(reply) || reply[0] !== 'pmessage') return;
        const e = parseSentinelEvent(String(reply[2]), String(reply[3]), this.name);
        if (e !== undefined && !this.closed) this.onSentinelEvent(e);
      },
      onPushError: (message) => {
        this.owner.emit('error', new ReplyError(`sentinel ${s.key} refused PSUBSCRIBE: ${message}`, 'PSUBSCRIBE'), this);
      },
    };
    conn[kSetPushHandler](handler);
  }

  private readonly onConnectionReady = (conn: Connection): void => {
    if (this.closed) return;
    for (const s of this.sentinelList) {
      if (s.watch === conn) {
        // One pattern, one confirmation: sent as an answered command, so the connection sees
        // nothing owed once it is in and lets the process exit when nothing else is going on.
        conn.submit(PSUBSCRIBE_ALL, new CallbackSink('PSUBSCRIBE', (err) => {
          // A lost connection is said by the connection and retried on 'ready'; a refusal is ours to say.
          if (err instanceof ReplyError && !this.closed) this.owner.emit('error', new ReplyError(`sentinel ${s.key} refused PSUBSCRIBE: ${err.message}`, 'PSUBSCRIBE'), this);
        }));
        // Events may have been missed while it was down.
        if (this.everDiscovered) this.discover();
        return;
      }
    }
    if (conn === this.masterConn && this.everDiscovered) {
      // Back after a drop: check it is still the master before anything waiting goes out.
      this.discover();
    }
  };

  private readonly onConnectionClose = (conn: Connection): void => {
    if (this.closed) return;
    if (conn === this.masterConn && !this.switching) {
      this.direct = undefined;
      this.discover();
      this.pollWhileWaiting();
      return;
    }
    for (const s of this.sentinelList) {
      if (s.watch !== conn) continue;
      // A sentinel lost: check now whether the others still answer (if none does, the retries
      // with backoff and their 'error' events start here, not at the next refreshInterval).
      if (this.everDiscovered) this.discover();
      if (conn.state === 'closed') {
        // Closed for good (bad password...): open it again later.
        s.watch = undefined;
        setTimeout(() => this.watch(s), RETRY_MAX_MS).unref();
      }
    }
  };

  private keyOfConn(conn: Connection): string | undefined {
    const o = conn.resolvedOptions;
    return `${o.host}:${o.port}`;
  }

  private mapAddress(addr: NodeAddress): NodeAddress {
    const nat = this.natMap;
    if (nat === undefined) return addr;
    if (typeof nat === 'function') return nat(addr);
    return nat[`${addr.host}:${addr.port}`] ?? addr;
  }

  // ---------------------------------------------------------------- closing

  /**
   * @internal For loop.close(), which is graceful: resolves once nothing waits here for a
   * master (sent, or rejected after failoverTimeout).
   */
  settle(): Promise<void> {
    if (this.closed || (this.held.length === 0 && this.returned.length === 0)) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  /** @internal Stops watching; commands still waiting here reject (never written). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.direct = undefined;
    clearInterval(this.refreshTimer);
    clearTimeout(this.pollTimer);
    clearTimeout(this.expiryTimer);
    this.rejectWaiting((name) => new ClientStateError(`${name}: sentinel target '${this.name}' is closed`));
    for (const w of this.settleWaiters.splice(0)) w();
    for (const w of this.roomWaiters.splice(0)) w();
    for (const s of this.sentinelList) {
      s.watch?.disconnect('the sentinel target was closed');
      void s.query?.close();
    }
    this.ready?.reject(new ClientStateError(`sentinel target '${this.name}' was closed`));
    this.ready = undefined;
  }

  /** @internal A feature (pub/sub) hears of every change of master or replicas; returns how to stop. */
  [kWatchTopology](watcher: () => void): () => void {
    this.topologyWatchers.add(watcher);
    return () => this.topologyWatchers.delete(watcher);
  }

  private topologyChanged(change: 'discovery' | 'failover' | 'replicas', from: string | undefined): void {
    if (topologyChannel.hasSubscribers && this.masterKey !== undefined) {
      const message: TopologyMessage = {
        target: 'sentinel',
        change,
        shards: [{ master: this.masterKey, slots: [[0, 16383]], replicas: this.replicaList.map((r) => r.key) }],
        from,
        to: this.masterKey,
      };
      topologyChannel.publish(message);
    }
    this.owner.emit('topology', this);
    for (const w of [...this.topologyWatchers]) {
      try { w(); } catch (err) { queueMicrotask(() => { throw err; }); }
    }
  }

  [inspect.custom](): string {
    return `Sentinel <${this.name} ${this.masterKey ?? 'unknown'}${this.failoverSince !== 0 ? ', failing over' : ''}${this.closed ? ', closed' : ''}>`;
  }
}

/** Written by hand: the shared encoder refuses pub/sub commands (they change a connection's mode). */
const PSUBSCRIBE_ALL = '*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n';

function keyOf(a: NodeAddress): string {
  return `${a.host}:${a.port}`;
}

function describe(err: Error): string {
  return `(${err.message.replace(/; the command (was never written|had been written and may have run on the server)$/, '')})`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
