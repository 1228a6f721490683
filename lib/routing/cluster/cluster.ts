/**
 * Cluster: one target for a whole Redis Cluster. Each command goes to the connection of the
 * node that owns its keys' slot, so a batch sent in one tick leaves as one write per node, all
 * nodes in parallel (redis-py-cluster's pipeline, without threads). Redirections (MOVED, ASK,
 * TRYAGAIN, CLUSTERDOWN) are followed under the caller's future, which settles once
 * (redirects.ts); the slot map and the node connections are in slot-map.ts, reading the map in
 * refresh.ts, the options in options.ts.
 *
 * What is never done: re-sending a command that was written to a node that then died. Such a
 * command may have run, so it rejects with ConnectionClosedError (written: true). A command
 * that was not written waits for the slot's new owner and goes there.
 */
import { inspect } from 'node:util';
import pDefer, { type DeferredPromise } from 'p-defer';
import type { Connection, ConnectionObserver } from '../../connection/connection.js';
import { kConnect, kWatchTopology } from '../../base/internal.js';
import type { LoopPort } from '../loop-port.js';
import type { ReplySink } from '../../base/reply-sink.js';
import type { Encoded } from '../../protocol/encoder.js';
import type { ConnectionOptions } from '../../base/options.js';
import { ConnectionClosedError, RoutingError } from '../../base/errors.js';
import { SlotRouter, type CommandBlock } from '../router.js';
import { keySlot } from '../slot.js';
import { resolveClusterOptions, type ClusterOptions, type ReadFrom } from './options.js';
import { SlotMap, type ClusterNodeInfo } from './slot-map.js';
import { Redirects } from './redirects.js';
import { readTopology, refreshCandidates } from './refresh.js';
import { topologyChannel, type TopologyMessage } from '../../base/channels.js';

export type { ClusterOptions, ReadFrom } from './options.js';
export type { ClusterNodeInfo } from './slot-map.js';


export interface ClusterStats {
  /** MOVED replies followed. */
  moved: number;
  /** ASK replies followed. */
  ask: number;
  /** TRYAGAIN replies retried. */
  tryAgain: number;
  /** CLUSTERDOWN replies retried. */
  clusterDown: number;
  /** Unwritten commands moved to another node after theirs went away. */
  rerouted: number;
  /** Slot-map refreshes completed. */
  refreshes: number;
  /** Commands split per slot (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH). */
  split: number;
  /** Commands that waited behind a moved slot's fence for the old owner's in-flight ones. */
  fenced: number;
}

/** How often the map is read again while a node this client uses is down. */
const DOWN_POLL_MS = 250;
/** How soon the map is read again while a replica reads could use is still syncing. */
const REPLICA_POLL_MS = 1000;
/** How often a graceful close looks again for commands still on their way (see settle()). */
const SETTLE_POLL_MS = 5;

export class Cluster extends SlotRouter {
  readonly loop: unknown;
  protected readonly kind = 'cluster';
  private readonly owner: LoopPort;
  private readonly topologyWatchers = new Set<() => void>();
  private readonly readFrom: ReadFrom;
  private readonly useTls: boolean;
  private readonly map: SlotMap;
  private readonly redirects: Redirects;
  /** Where a refresh may start from: the seeds, then the masters of the last map. */
  private readonly seedConns: Connection[] = [];
  private layout = '';
  private refreshes = 0;

  private refreshing = false;
  private refreshAgain = false;
  private refreshTimer: NodeJS.Timeout | undefined;
  private downTimer: NodeJS.Timeout | undefined;
  private replicaTimer: NodeJS.Timeout | undefined;
  /** Made only for a caller of whenReady(), so a failure always has a listener. */
  private ready: DeferredPromise<void> | undefined;
  /**
   * Since when no map could be read, while none is known. Counted from the start, so commands
   * sent before the first map reject at the first failed read past connectTimeout, not
   * connectTimeout after it (a seed that never answers takes 2 s per read to fail).
   */
  private discoveryFailingSince = Date.now();

  /** @internal use loop.cluster() */
  constructor(owner: LoopPort, seeds: ReadonlyArray<string | ConnectionOptions>, options: ClusterOptions = {}) {
    super();
    const o = resolveClusterOptions(seeds, options);
    this.owner = owner;
    this.loop = owner;
    this.readFrom = o.readFrom;
    this.useTls = o.useTls;
    // The cluster hears of its own connections only (a node's going away makes it read the map).
    const observer: ConnectionObserver = { onClose: this.onConnectionClose };
    this.map = new SlotMap((opts) => owner[kConnect](opts, observer), o.template, o.readFrom, o.natMap, () => this.seedConns[0]!.resolvedOptions.host);
    const self = this;
    this.redirects = new Redirects(this.map, o.maxRedirections, o.clusterDownTimeout, {
      get closed() { return self.closed; },
      closedError: (name) => this.closedError(name),
      refresh: () => this.refresh(),
      pollWhileDown: () => this.pollWhileDown(),
      slotsMoved: (slots) => this.onSlotsMoved?.(slots),
      held: this.heldDeadlines,
    });
    for (const seed of o.seeds) this.seedConns.push(owner[kConnect](seed, observer));
    if (o.refreshInterval > 0) {
      this.refreshTimer = setInterval(() => this.refresh(), o.refreshInterval);
      this.refreshTimer.unref();
    }
    this.refresh();
  }

  get commandTimeout(): number {
    return this.seedConns[0]!.commandTimeout;
  }

  get defaultReturnBuffers(): boolean {
    return this.seedConns[0]!.defaultReturnBuffers;
  }

  protected get routable(): boolean {
    return this.table !== undefined && this.map.masters.length !== 0;
  }

  /** Counters: redirections followed, refreshes, reroutes. */
  get stats(): ClusterStats {
    return { ...this.redirects.counters, refreshes: this.refreshes, split: this.splitCount };
  }

  /** Every node in the current map, masters first. */
  get nodes(): ClusterNodeInfo[] {
    return this.map.info();
  }

  /** Resolves once the slot map and the command table are known (commands need not wait for it). */
  whenReady(): Promise<void> {
    if (this.routable) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closedError('whenReady()'));
    this.ready ??= pDefer<void>();
    return this.ready.promise;
  }

  /** A connection to every master in the current map (SCAN, keyless fan-out by hand). */
  get masterConnections(): Connection[] {
    return this.map.masters.map((m) => this.map.primary(m));
  }

  /** The connection to the master that owns `key`'s slot, for commands you route yourself. */
  connectionFor(key: string | Buffer | number): Connection {
    const conn = this.map.masterOf(keySlot(key));
    if (conn === undefined) throw new RoutingError(`no node is known to serve the slot of this key yet; await cluster.whenReady() first`);
    return conn;
  }

  connectionForSlot(slot: number): Connection | undefined {
    return this.map.masterOf(slot);
  }

  waitForRoom(): Promise<void> {
    const conns = [...this.map.nodeOfConn.keys()].filter((c) => c.state !== 'closed');
    return Promise.all(conns.map((c) => c.waitForRoom())).then(() => undefined);
  }

  protected sendToSlot(slot: number, encoded: Encoded, sink: ReplySink, flags: number): void {
    this.redirects.send(slot, encoded, sink, flags);
  }

  protected sendBlockToSlot(slot: number, block: CommandBlock, sink: ReplySink): void {
    this.redirects.sendBlock(slot, block, sink);
  }

  protected sendKeyless(encoded: Encoded, sink: ReplySink): void {
    this.map.nextMasterConnection().submit(encoded, sink);
  }

  /** Whether a command sent through this cluster may still be on its way (waiting here or in a node's FIFO). */
  private get busy(): boolean {
    if (this.parkedUnsettled || this.redirects.holding) return true;
    for (const conn of this.map.nodeOfConn.keys()) if (conn.state !== 'closed' && (conn.pendingReplies !== 0 || conn.stats.offlineQueued !== 0)) return true;
    for (const conn of this.map.retiring) if (conn.state !== 'closed' && conn.pendingReplies !== 0) return true;
    return false;
  }

  /**
   * @internal For loop.close(), which is graceful: resolves once every command sent through
   * this cluster has its outcome, following the redirections that come back meanwhile (a MOVED
   * for a command written before close(), a command behind a moved slot's fence or on a
   * TRYAGAIN timer), as a connection's close sees through what it had queued. Each wait is
   * bounded as it always is: commandTimeout, maxRedirections, clusterDownTimeout.
   */
  override async settle(): Promise<void> {
    await this.settleParked();
    while (!this.closed && this.busy) await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }

  // ---------------------------------------------------------------- topology

  /** Reads the slot map again; one refresh at a time, however many ask for one. */
  refresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    const candidates = refreshCandidates(this.map.nodeOfConn.keys(), this.seedConns);
    readTopology(candidates, this.useTls, this.table === undefined, () => this.closed).then((read) => {
      this.refreshing = false;
      if (this.closed) return;
      if (read !== undefined) {
        this.table ??= read.table;
        this.apply(read.shards);
        this.refreshes++;
      } else {
        this.discoveryFailed();
      }
      if (this.refreshAgain) {
        this.refreshAgain = false;
        this.refresh();
      }
    });
  }

  private apply(shards: Parameters<SlotMap['apply']>[0]): void {
    this.discoveryFailingSince = 0;
    const change = this.map.apply(shards, this.seedConns, (slots, old) => {
      this.redirects.fence(slots, old);
      this.onSlotsMoved?.(slots); // the client-side cache drops the slots that changed owner
    });
    if (change.layout !== this.layout) {
      this.layout = change.layout;
      if (topologyChannel.hasSubscribers) publishTopology(this.map, shards);
      this.owner.emit('topology', this);
      for (const watcher of this.topologyWatchers) watcher();
    }
    this.releaseParked();
    this.ready?.resolve();
    this.ready = undefined;
    this.redirects.releaseWaiting();
    this.pollWhileDown();
    // A replica still syncing is left out of reads; read the map again soon to add it.
    if (change.replicasSyncing && this.readFrom !== 'master' && this.replicaTimer === undefined) {
      this.replicaTimer = setTimeout(() => {
        this.replicaTimer = undefined;
        this.refresh();
      }, REPLICA_POLL_MS);
      this.replicaTimer.unref();
    }
  }

  /** While a master's connection is down or commands wait for a map, read it again soon. */
  private pollWhileDown(): void {
    if (this.downTimer !== undefined || this.closed) return;
    const down = this.redirects.waitingCount !== 0 || this.map.masters.some((m) => m.conn === undefined || m.conn.state !== 'ready');
    if (!down) return;
    this.downTimer = setTimeout(() => {
      this.downTimer = undefined;
      this.refresh();
      this.redirects.expireWaiting();
      this.pollWhileDown();
    }, DOWN_POLL_MS);
    this.downTimer.unref();
  }

  private discoveryFailed(): void {
    if (this.routable) return;
    const now = Date.now();
    if (this.discoveryFailingSince === 0) this.discoveryFailingSince = now;
    const limit = this.seedConns[0]?.resolvedOptions.connectTimeout ?? 10_000;
    if (now - this.discoveryFailingSince >= limit) {
      const why = (name: string) => new ConnectionClosedError(`no seed of the cluster answered CLUSTER SHARDS within ${limit}ms (connectTimeout)`, name, false);
      this.rejectParked(why);
      this.ready?.reject(why('cluster'));
      this.ready = undefined;
    }
    const retry = setTimeout(() => this.refresh(), 100);
    // Somebody waits for the map (a parked command, whenReady()): keep the process alive until it
    // comes or they are rejected above; the seed connections stop holding it after failQueuedAfter.
    if (this.parkedCount === 0 && this.ready === undefined) retry.unref();
  }

  private readonly onConnectionClose = (conn: Connection): void => {
    if (this.closed || !this.map.nodeOfConn.has(conn)) return;
    this.refresh();
    this.pollWhileDown();
  };

  /** @internal Stops refreshing; commands still waiting for a node reject (never written). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.refreshTimer);
    clearTimeout(this.downTimer);
    clearTimeout(this.replicaTimer);
    this.topologyWatchers.clear();
    this.rejectParked((name) => this.closedError(name));
    this.redirects.rejectAll();
    this.ready?.reject(this.closedError('whenReady()'));
    this.ready = undefined;
  }

  /** @internal */
  [kWatchTopology](watcher: () => void): () => void {
    this.topologyWatchers.add(watcher);
    return () => this.topologyWatchers.delete(watcher);
  }

  [inspect.custom](): string {
    return `Cluster <${this.map.masters.length} master(s)${this.closed ? ', closed' : ''}>`;
  }
}

/** Tells `redloop:topology` of a new layout (only while it has subscribers). */
function publishTopology(map: SlotMap, shards: Parameters<SlotMap['apply']>[0]): void {
  const message: TopologyMessage = {
    target: 'cluster',
    change: 'slots',
    shards: shards.map((sh) => ({ master: map.nodeAt(sh.master).key, slots: sh.slots, replicas: sh.replicas.map((r) => map.nodeAt(r).key) })),
  };
  topologyChannel.publish(message);
}
