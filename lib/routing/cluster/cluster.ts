/**
 * Cluster: one target for a whole Redis Cluster. Each command goes to the connection of the
 * node that owns its keys' slot, so a batch sent in one tick leaves as one write per node, all
 * nodes in parallel (redis-py-cluster's pipeline, without threads). Redirections (MOVED, ASK,
 * TRYAGAIN, CLUSTERDOWN) are followed under the caller's future, which settles once.
 *
 * What is never done: re-sending a command that was written to a node that then died. Such a
 * command may have run, so it rejects with ConnectionClosedError (written: true). A command
 * that was not written waits for the slot's new owner and goes there.
 */
import { inspect } from 'node:util';
import pDefer, { type DeferredPromise } from 'p-defer';
import type { Connection } from '../../connection/connection.js';
import type { ReplySink } from '../../base/reply-sink.js';
import { encodeCommand, type Encoded } from '../../protocol/encoder.js';
import { parseRedisUrl, type ConnectionOptions } from '../../base/options.js';
import { ClientStateError, ConfigError, ConnectionClosedError, isUnwritten, ReplyError, RoutingError, withoutWrittenNote } from '../../base/errors.js';
import { SlotRouter, type CommandBlock } from '../router.js';
import { CommandFlag, CommandTable } from '../commands.js';
import { SLOT_COUNT, keySlot } from '../slot.js';
import { ask, IGNORED_REPLY } from '../ask.js';
import { parseClusterShards, parseClusterSlots, parseRedirect, type NodeAddress, type TopologyShard } from './topology.js';

export type ReadFrom = 'master' | 'replica' | 'prefer-replica';

export interface ClusterOptions extends ConnectionOptions {
  /**
   * Where read-only commands (by the server's command flags) go: 'master' (default), 'replica'
   * (a replica of the slot's master, round robin, the master when it has none) or
   * 'prefer-replica' (a replica whose connection is ready, else the master).
   */
  readFrom?: ReadFrom;
  /** ms between slot-map refreshes when nothing else triggers one; 0 for never. Default 30000. */
  refreshInterval?: number;
  /** Most MOVED/ASK/TRYAGAIN redirections one command follows before it rejects. Default 16. */
  maxRedirections?: number;
  /**
   * ms a command keeps retrying while the cluster answers CLUSTERDOWN or no node serves its
   * slot (a master died and no replica is promoted yet); then it rejects. Default 30000.
   */
  clusterDownTimeout?: number;
  /**
   * Addresses the nodes announce mapped to addresses this client can reach:
   * `{ '10.0.0.5:6379': { host: '127.0.0.1', port: 7000 } }` or a function.
   */
  natMap?: Record<string, NodeAddress> | ((address: NodeAddress) => NodeAddress);
}

/** What a cluster needs from the loop that owns it. */
export interface ClusterOwner {
  connect(options: ConnectionOptions): Connection;
  on(event: 'close', listener: (conn: Connection) => void): unknown;
  off(event: 'close', listener: (conn: Connection) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
}

export interface ClusterNodeInfo {
  /** host:port the client connects to (after natMap). */
  address: string;
  id: string;
  role: 'master' | 'replica';
  /** Slot ranges [first, last] this node serves as master (empty for replicas). */
  slots: Array<[number, number]>;
  /** The address of its master, for replicas. */
  masterAddress: string | undefined;
  /** State of this client's connection to it ('none' when it has none). */
  connection: string;
}

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
}

const ASKING = encodeCommand('ASKING', []) as string;
/** How often the map is read again while a node this client uses is down. */
const DOWN_POLL_MS = 250;
/** How soon the map is read again while a replica reads could use is still syncing. */
const REPLICA_POLL_MS = 1000;
/** Longest a slot's new commands wait behind the old owner's in-flight ones (see fence()). */
const FENCE_MS = 5000;

class ClusterNode {
  conn: Connection | undefined;
  /** READONLY connection, for reads from a replica. */
  readConn: Connection | undefined;
  id = '';
  role: 'master' | 'replica' = 'master';
  health = 'online';
  masterKey: string | undefined;
  constructor(readonly key: string, readonly host: string, readonly port: number) {}
}

interface SlotOwner {
  master: ClusterNode;
  replicas: ClusterNode[];
}

/** Stands between a node's FIFO and the caller's sink, to follow redirections first. */
class ClusterSink implements ReplySink {
  redirections = 0;
  /** When this command first found no node able to run it (CLUSTERDOWN, node gone). */
  downSince = 0;
  constructor(readonly cluster: Cluster, readonly user: ReplySink, readonly encoded: Encoded, readonly slot: number, readonly flags: number,
    /** A MULTI block (loop.multi) goes, and follows redirections, whole: `encoded` is unused then. */
    readonly block?: CommandBlock) {}
  get command(): string { return this.user.command; }
  get returnBuffers(): boolean { return this.user.returnBuffers; }
  // Optional on a sink, so nothing makes a wrapper pass it on: without this a per-command bigInt is lost.
  get bigInt(): boolean | undefined { return this.user.bigInt; }
  get deadline(): number { return this.user.deadline; }
  set deadline(ms: number) { this.user.deadline = ms; }
  get settled(): boolean { return this.user.settled; }
  resolveReply(reply: unknown): void { this.user.resolveReply(reply); }
  rejectReply(err: Error): void { this.cluster.onFailure(this, err); }
}

export class Cluster extends SlotRouter {
  readonly loop: unknown;
  protected readonly kind = 'cluster';
  private readonly owner: ClusterOwner;
  private readonly template: ConnectionOptions;
  private readonly readFrom: ReadFrom;
  private readonly maxRedirections: number;
  private readonly clusterDownTimeout: number;
  private readonly natMap: ClusterOptions['natMap'];
  private readonly useTls: boolean;

  private readonly nodes_ = new Map<string, ClusterNode>();
  private readonly nodeOfConn = new Map<Connection, ClusterNode>();
  private readonly seedConns: Connection[] = [];
  private slots: Array<SlotOwner | undefined> = new Array(SLOT_COUNT).fill(undefined);
  private masters: ClusterNode[] = [];
  private nextMaster = 0;
  private nextReplica = 0;
  private layout = '';

  private refreshing = false;
  private refreshAgain = false;
  private refreshTimer: NodeJS.Timeout | undefined;
  private downTimer: NodeJS.Timeout | undefined;
  private waitingForMap: ClusterSink[] = [];
  /**
   * Slots whose owner changed while the old owner's connection may still hold commands for
   * them: new commands for such a slot queue here until those have come back (see fence()).
   */
  private readonly fences = new Map<number, ClusterSink[]>();
  private replicaTimer: NodeJS.Timeout | undefined;
  /** Made only for a caller of whenReady(), so a failure always has a listener. */
  private ready: DeferredPromise<void> | undefined;
  private discoveryFailingSince = 0;
  private readonly counters: ClusterStats = { moved: 0, ask: 0, tryAgain: 0, clusterDown: 0, rerouted: 0, refreshes: 0, split: 0 };

  /** @internal use loop.cluster() */
  constructor(owner: ClusterOwner, seeds: ReadonlyArray<string | ConnectionOptions>, options: ClusterOptions = {}) {
    super();
    if (!Array.isArray(seeds) || seeds.length === 0) throw new ConfigError('cluster() needs at least one seed: a redis:// URL or connection options of one node');
    if (options === null || typeof options !== 'object') throw new ConfigError('cluster options must be an object');
    this.owner = owner;
    this.loop = owner;
    const { readFrom = 'master', refreshInterval = 30_000, maxRedirections = 16, clusterDownTimeout = 30_000, natMap, ...connOptions } = options;
    if (!['master', 'replica', 'prefer-replica'].includes(readFrom)) throw new ConfigError(`readFrom must be 'master', 'replica' or 'prefer-replica', got ${String(readFrom)}`);
    for (const [k, v] of Object.entries({ refreshInterval, maxRedirections, clusterDownTimeout })) {
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ConfigError(`${k} must be a non-negative number, got ${String(v)}`);
    }
    if (natMap !== undefined && typeof natMap !== 'function' && (typeof natMap !== 'object' || natMap === null)) throw new ConfigError('natMap must be an object or a function');
    this.readFrom = readFrom;
    this.maxRedirections = maxRedirections;
    this.clusterDownTimeout = clusterDownTimeout;
    this.natMap = natMap;

    // Every node is opened like the first seed: its URL's credentials and TLS, under the options.
    const first = seeds[0]!;
    const seedBase: ConnectionOptions = typeof first === 'string' ? parseRedisUrl(first) : { ...first };
    const { host: _h, port: _p, path: _path, url, ...fromSeed } = seedBase;
    const fromUrl = url !== undefined ? (({ host: _uh, port: _up, path: _upath, ...rest }) => rest)(parseRedisUrl(url)) : {};
    this.template = { ...fromUrl, ...fromSeed, ...connOptions };
    this.useTls = this.template.tls !== undefined && this.template.tls !== false;

    for (const seed of seeds) {
      const conn = owner.connect(typeof seed === 'string' ? { ...this.template, url: seed, ...connOptions } : { ...this.template, ...seed });
      this.seedConns.push(conn);
    }
    owner.on('close', this.onConnectionClose);
    if (refreshInterval > 0) {
      this.refreshTimer = setInterval(() => this.refresh(), refreshInterval);
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
    return this.table !== undefined && this.masters.length !== 0;
  }

  /** Counters: redirections followed, refreshes, reroutes. */
  get stats(): ClusterStats {
    return { ...this.counters, split: this.splitCount };
  }

  /** Every node in the current map, masters first. */
  get nodes(): ClusterNodeInfo[] {
    const slotsOf = new Map<ClusterNode, Array<[number, number]>>();
    let start = 0;
    for (let s = 1; s <= SLOT_COUNT; s++) {
      const prev = this.slots[s - 1];
      if (s < SLOT_COUNT && this.slots[s]?.master === prev?.master) continue;
      if (prev !== undefined) {
        const list = slotsOf.get(prev.master) ?? [];
        list.push([start, s - 1]);
        slotsOf.set(prev.master, list);
      }
      start = s;
    }
    const out: ClusterNodeInfo[] = [];
    for (const node of this.nodes_.values()) {
      out.push({
        address: node.key, id: node.id, role: node.role, slots: slotsOf.get(node) ?? [],
        masterAddress: node.role === 'replica' ? node.masterKey : undefined,
        connection: (node.conn ?? node.readConn)?.state ?? 'none',
      });
    }
    return out.sort((a, b) => (a.role === b.role ? a.address.localeCompare(b.address) : a.role === 'master' ? -1 : 1));
  }

  /** Resolves once the slot map and the command table are known (commands need not wait for it). */
  whenReady(): Promise<void> {
    if (this.routable) return Promise.resolve();
    if (this.closed) return Promise.reject(new ClientStateError('this cluster is closed'));
    this.ready ??= pDefer<void>();
    return this.ready.promise;
  }

  /** A connection to every master in the current map (SCAN, keyless fan-out by hand). */
  get masterConnections(): Connection[] {
    return this.masters.map((m) => this.primary(m));
  }

  /** The connection to the master that owns `key`'s slot, for commands you route yourself. */
  connectionFor(key: string | Buffer | number): Connection {
    const owner = this.slots[keySlot(key)];
    if (owner === undefined) throw new RoutingError(`no node is known to serve the slot of this key yet; await cluster.whenReady() first`);
    return this.primary(owner.master);
  }

  connectionForSlot(slot: number): Connection | undefined {
    const owner = this.slots[slot];
    return owner === undefined ? undefined : this.primary(owner.master);
  }

  waitForRoom(): Promise<void> {
    const conns = [...this.nodeOfConn.keys()].filter((c) => c.state !== 'closed');
    return Promise.all(conns.map((c) => c.waitForRoom())).then(() => undefined);
  }

  // ---------------------------------------------------------------- sending

  protected sendToSlot(slot: number, encoded: Encoded, sink: ReplySink, flags: number): void {
    const s = new ClusterSink(this, sink, encoded, slot, flags);
    const owner = this.slots[slot];
    if (owner === undefined) {
      this.waitForMap(s);
      return;
    }
    if (this.fences.size !== 0) {
      const held = this.fences.get(slot);
      if (held !== undefined) {
        held.push(s);
        return;
      }
    }
    this.connFor(owner, flags).submit(encoded, s);
  }

  protected sendBlockToSlot(slot: number, block: CommandBlock, sink: ReplySink): void {
    const s = new ClusterSink(this, sink, '', slot, 0, block); // flags 0: a block always goes to the master
    const owner = this.slots[slot];
    if (owner === undefined) this.waitForMap(s);
    else this.write(this.primary(owner.master), s);
  }

  /** Writes a command (or a whole block) with its ClusterSink. */
  private write(conn: Connection, s: ClusterSink): void {
    if (s.block === undefined) conn.submit(s.encoded, s);
    else s.block.writeTo(conn, s);
  }

  protected sendKeyless(encoded: Encoded, sink: ReplySink): void {
    // Keyless commands (PING, INFO, SCRIPT LOAD...) go to one master, taken in turn.
    const node = this.masters[this.nextMaster++ % this.masters.length]!;
    this.primary(node).submit(encoded, sink);
  }

  private connFor(owner: SlotOwner, flags: number): Connection {
    if (this.readFrom !== 'master' && (flags & CommandFlag.ReadOnly) !== 0 && (flags & CommandFlag.Write) === 0 && owner.replicas.length !== 0) {
      const replica = owner.replicas[this.nextReplica++ % owner.replicas.length]!;
      const conn = this.reader(replica);
      if (this.readFrom === 'replica' || conn.state === 'ready') return conn;
    }
    return this.primary(owner.master);
  }

  private primary(node: ClusterNode): Connection {
    if (node.conn === undefined || node.conn.state === 'closed') {
      node.conn = this.owner.connect({ ...this.template, host: node.host, port: node.port });
      this.nodeOfConn.set(node.conn, node);
    }
    return node.conn;
  }

  private reader(node: ClusterNode): Connection {
    if (node.readConn === undefined || node.readConn.state === 'closed') {
      node.readConn = this.owner.connect({ ...this.template, host: node.host, port: node.port, readOnly: true });
      this.nodeOfConn.set(node.readConn, node);
    }
    return node.readConn;
  }

  // ---------------------------------------------------------------- redirections

  /** @internal A command's reply was an error, or its connection failed it. */
  onFailure(s: ClusterSink, err: Error): void {
    if (s.user.settled) return;
    if (this.closed) {
      s.user.rejectReply(err instanceof ReplyError || (err instanceof ConnectionClosedError && err.written) ? err : this.closedError(s.command));
      return;
    }
    if (err instanceof ReplyError) {
      switch (err.code) {
        case 'MOVED':
        case 'ASK': {
          const to = parseRedirect(err.message);
          if (to === undefined || ++s.redirections > this.maxRedirections) break;
          const node = this.nodeAt(to);
          const conn = this.primary(node);
          if (err.code === 'MOVED') {
            this.counters.moved++;
            // Learn the one slot now; the refresh learns the rest. Commands for the slot sent
            // from now on wait until the old owner has answered what it still holds, so they
            // reach the new owner after the older ones this MOVED is the first of.
            const old = this.slots[to.slot]?.master;
            if (old !== node) {
              if (old?.conn !== undefined) this.fence([to.slot], old.conn);
              this.slots[to.slot] = { master: node, replicas: [] };
            }
            if (!this.masters.includes(node)) this.masters.push(node);
            this.refresh();
          } else {
            this.counters.ask++;
            conn.submit(ASKING, IGNORED_REPLY); // contiguous with the command: nothing runs in between
          }
          this.write(conn, s);
          return;
        }
        case 'TRYAGAIN': {
          // Multi-key command during a migration with keys on both sides: wait a moment.
          if (++s.redirections > this.maxRedirections) break;
          this.counters.tryAgain++;
          setTimeout(() => this.resend(s), 10 * s.redirections);
          return;
        }
        case 'CLUSTERDOWN': {
          const now = Date.now();
          if (s.downSince === 0) s.downSince = now;
          if (now - s.downSince >= this.clusterDownTimeout) {
            s.user.rejectReply(new ReplyError(`${err.message} (still down after ${this.clusterDownTimeout}ms, clusterDownTimeout)`, err.command));
            return;
          }
          this.counters.clusterDown++;
          this.refresh();
          setTimeout(() => this.resend(s), Math.min(1000, 50 * 2 ** Math.min(5, ++s.redirections)));
          return;
        }
      }
      if (s.redirections > this.maxRedirections) {
        s.user.rejectReply(new ReplyError(`${err.message} (gave up after ${this.maxRedirections} redirections, maxRedirections)`, err.command));
        return;
      }
      s.user.rejectReply(err);
      return;
    }
    // Never written (its node went away before, or its connection was retired): send it to
    // the slot's owner once the map says who that is.
    if (isUnwritten(err)) {
      const now = Date.now();
      if (s.downSince === 0) s.downSince = now;
      if (now - s.downSince >= this.clusterDownTimeout) {
        s.user.rejectReply(new ConnectionClosedError(`no node of the cluster could take it within ${this.clusterDownTimeout}ms (clusterDownTimeout): ${withoutWrittenNote(err)}`, s.command, false));
        return;
      }
      this.counters.rerouted++;
      this.waitForMap(s);
      return;
    }
    s.user.rejectReply(err);
  }

  /** Sends a command again to whoever owns its slot now. */
  private resend(s: ClusterSink): void {
    if (s.user.settled) return;
    if (this.closed) {
      s.user.rejectReply(this.closedError(s.command));
      return;
    }
    const owner = this.slots[s.slot];
    if (owner === undefined) {
      this.waitForMap(s);
      return;
    }
    const held = this.fences.size !== 0 ? this.fences.get(s.slot) : undefined;
    if (held !== undefined) held.push(s);
    else this.write(this.connFor(owner, s.flags), s);
  }

  /**
   * Holds new commands for `slots` (whose owner just changed) until `old` has answered every
   * command written to it before now: a PING queued behind them comes back after them, and
   * by then each one that was redirected has been re-sent to the new owner, in order. So
   * commands of one slot reach the new owner in the order they were first sent. Bounded by
   * FENCE_MS; a connection that fails settles the PING at once.
   */
  private fence(slots: readonly number[], old: Connection): void {
    if (old.state !== 'ready') return; // nothing in flight there that will come back as MOVED
    const mine: number[] = [];
    for (const slot of slots) {
      if (this.fences.has(slot)) continue; // an earlier fence already holds it
      this.fences.set(slot, []);
      mine.push(slot);
    }
    if (mine.length === 0) return;
    const release = () => {
      for (const slot of mine) {
        const held = this.fences.get(slot);
        this.fences.delete(slot);
        if (held !== undefined) for (const s of held) if (!s.user.settled) this.resend(s);
      }
    };
    ask(old, ['PING'], FENCE_MS).then(release, release);
  }

  /** Parks a command until the next refresh of the map. */
  private waitForMap(s: ClusterSink): void {
    if (s.downSince === 0) s.downSince = Date.now();
    this.waitingForMap.push(s);
    this.refresh();
    this.pollWhileDown();
  }

  private nodeAt(to: { host: string; port: number }): ClusterNode {
    const addr = this.mapAddress({ host: to.host === '' ? this.anyHost() : to.host, port: to.port });
    const key = `${addr.host}:${addr.port}`;
    let node = this.nodes_.get(key);
    if (node === undefined) {
      node = new ClusterNode(key, addr.host, addr.port);
      this.nodes_.set(key, node);
    }
    return node;
  }

  private anyHost(): string {
    return this.seedConns[0]!.resolvedOptions.host;
  }

  private mapAddress(addr: NodeAddress): NodeAddress {
    const nat = this.natMap;
    if (nat === undefined) return addr;
    if (typeof nat === 'function') return nat(addr);
    return nat[`${addr.host}:${addr.port}`] ?? addr;
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
    this.readTopology().then((ok) => {
      this.refreshing = false;
      if (this.closed) return;
      if (ok) this.counters.refreshes++;
      else this.discoveryFailed();
      if (this.refreshAgain) {
        this.refreshAgain = false;
        this.refresh();
      }
    });
  }

  /** Asks the nodes in turn (ready ones first, then the seeds) for the map; false if none answered. */
  private async readTopology(): Promise<boolean> {
    const known = [...this.nodeOfConn.keys()].filter((c) => c.state === 'ready');
    for (let i = known.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [known[i], known[j]] = [known[j]!, known[i]!];
    }
    const candidates = [...known, ...this.seedConns.filter((c) => c.state !== 'closed' && !known.includes(c))];
    for (const conn of candidates) {
      if (this.closed) return false;
      try {
        const via = { host: conn.resolvedOptions.host, port: conn.resolvedOptions.port };
        let shards: TopologyShard[];
        try {
          shards = parseClusterShards(await ask(conn, ['CLUSTER', 'SHARDS'], 2000), this.useTls, via);
        } catch (err) {
          if (!(err instanceof ReplyError) || !/unknown subcommand|unknown command/i.test(err.message)) throw err;
          shards = parseClusterSlots(await ask(conn, ['CLUSTER', 'SLOTS'], 2000), via);
        }
        if (shards.length === 0) continue; // a node that does not know the cluster yet
        if (this.table === undefined) this.table = new CommandTable(await ask(conn, ['COMMAND'], 5000));
        if (this.closed) return false;
        this.apply(shards);
        return true;
      } catch {
        // This node cannot tell; try the next one.
      }
    }
    return false;
  }

  private apply(shards: TopologyShard[]): void {
    const slots: Array<SlotOwner | undefined> = new Array(SLOT_COUNT).fill(undefined);
    const masters: ClusterNode[] = [];
    const used = new Set<ClusterNode>();
    let replicasSyncing = false;
    for (const shard of shards) {
      const master = this.nodeAt(shard.master);
      master.id = shard.master.id;
      master.role = 'master';
      master.health = shard.master.health;
      master.masterKey = undefined;
      masters.push(master);
      used.add(master);
      const replicas: ClusterNode[] = [];
      for (const r of shard.replicas) {
        if (r.health === 'loading') replicasSyncing = true;
        const node = this.nodeAt(r);
        node.id = r.id;
        node.role = 'replica';
        node.health = r.health;
        node.masterKey = master.key;
        used.add(node);
        if (r.health === 'online') replicas.push(node);
      }
      const owner: SlotOwner = { master, replicas };
      for (const [first, last] of shard.slots) slots.fill(owner, first, last + 1);
    }
    // Slots that change hands: their new commands wait for the old owner's in-flight ones.
    const moving = new Map<Connection, number[]>();
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const before = this.slots[slot]?.master;
      if (before === undefined || before === slots[slot]?.master || before.conn === undefined) continue;
      const list = moving.get(before.conn);
      if (list === undefined) moving.set(before.conn, [slot]);
      else list.push(slot);
    }
    this.slots = slots;
    this.masters = masters;
    this.discoveryFailingSince = 0;
    for (const [conn, list] of moving) this.fence(list, conn);

    // Connections this map no longer uses close gracefully: what they have in flight is
    // answered (a demoted master answers MOVED, which is followed); what they still queue is
    // rejected unwritten and comes back here to be routed again.
    for (const node of [...this.nodes_.values()]) {
      const serving = used.has(node);
      if (node.conn !== undefined && (!serving || node.role !== 'master')) {
        this.retire(node.conn);
        node.conn = undefined;
      }
      if (node.readConn !== undefined && (!serving || node.role !== 'replica' || node.health !== 'online' || this.readFrom === 'master')) {
        this.retire(node.readConn);
        node.readConn = undefined;
      }
      if (!serving) this.nodes_.delete(node.key);
    }
    // A seed that is a master serves as its connection; every master gets one now, so the
    // first batch finds them ready.
    for (const conn of this.seedConns) {
      const o = conn.resolvedOptions;
      const node = this.nodes_.get(`${o.host}:${o.port}`);
      if (node !== undefined && node.role === 'master' && node.conn === undefined && conn.state !== 'closed' && !o.readOnly) {
        node.conn = conn;
        this.nodeOfConn.set(conn, node);
      }
    }
    for (const m of masters) this.primary(m);
    for (const conn of this.seedConns.splice(0)) {
      if (!this.nodeOfConn.has(conn)) this.retire(conn);
    }
    this.seedConns.push(...masters.map((m) => m.conn!)); // later refreshes may start from any of them

    const layout = shards.map((s) => `${s.master.host}:${s.master.port}=${s.slots.map((r) => r.join('-')).join(',')}/${s.replicas.length}`).sort().join(' ');
    if (layout !== this.layout) {
      this.layout = layout;
      this.owner.emit('topology', this);
    }
    this.releaseParked();
    this.ready?.resolve();
    this.ready = undefined;
    const waiting = this.waitingForMap;
    this.waitingForMap = [];
    for (const s of waiting) this.resend(s);
    this.pollWhileDown();
    // A replica still syncing is left out of reads; read the map again soon to add it.
    if (replicasSyncing && this.readFrom !== 'master' && this.replicaTimer === undefined) {
      this.replicaTimer = setTimeout(() => {
        this.replicaTimer = undefined;
        this.refresh();
      }, REPLICA_POLL_MS);
      this.replicaTimer.unref();
    }
  }

  private retire(conn: Connection): void {
    this.nodeOfConn.delete(conn);
    conn.close().catch(() => {});
  }

  /** While a master's connection is down or commands wait for a map, read it again soon. */
  private pollWhileDown(): void {
    if (this.downTimer !== undefined || this.closed) return;
    const down = this.waitingForMap.length !== 0 || this.masters.some((m) => m.conn === undefined || m.conn.state !== 'ready');
    if (!down) return;
    this.downTimer = setTimeout(() => {
      this.downTimer = undefined;
      this.refresh();
      this.expireWaiting();
      this.pollWhileDown();
    }, DOWN_POLL_MS);
    this.downTimer.unref();
  }

  /** Commands that waited for a node longer than clusterDownTimeout reject, unwritten. */
  private expireWaiting(): void {
    const now = Date.now();
    this.waitingForMap = this.waitingForMap.filter((s) => {
      if (s.user.settled) return false;
      if (now - s.downSince < this.clusterDownTimeout) return true;
      s.user.rejectReply(new ConnectionClosedError(`no node of the cluster served slot ${s.slot} within ${this.clusterDownTimeout}ms (clusterDownTimeout)`, s.command, false));
      return false;
    });
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
    if (this.closed || !this.nodeOfConn.has(conn)) return;
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
    this.owner.off('close', this.onConnectionClose);
    this.rejectParked((name) => this.closedError(name));
    for (const s of this.waitingForMap.splice(0)) s.user.rejectReply(this.closedError(s.command));
    for (const held of this.fences.values()) for (const s of held) if (!s.user.settled) s.user.rejectReply(this.closedError(s.command));
    this.fences.clear();
    this.ready?.reject(new ClientStateError('this cluster was closed'));
    this.ready = undefined;
  }

  [inspect.custom](): string {
    return `Cluster <${this.masters.length} master(s)${this.closed ? ', closed' : ''}>`;
  }
}
