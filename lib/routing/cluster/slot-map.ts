/**
 * The slot map: which node serves which slot (its master and the replicas reads may use), the
 * client's connections to those nodes, and how a map read from the cluster replaces the last one.
 */
import type { Connection } from '../../connection/connection.js';
import type { ConnectionOptions } from '../../base/options.js';
import { CommandFlag } from '../commands.js';
import { SLOT_COUNT } from '../slot.js';
import type { NodeAddress, TopologyShard } from './topology.js';
import type { ClusterOptions, ReadFrom } from './options.js';

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

export class ClusterNode {
  conn: Connection | undefined;
  /** READONLY connection, for reads from a replica. */
  readConn: Connection | undefined;
  id = '';
  role: 'master' | 'replica' = 'master';
  health = 'online';
  masterKey: string | undefined;
  constructor(readonly key: string, readonly host: string, readonly port: number) {}
}

export interface SlotOwner {
  master: ClusterNode;
  replicas: ClusterNode[];
}

/** What applying a new map changed, for the cluster to act on. */
export interface MapChange {
  /** A replica still syncing was left out of reads: read the map again soon. */
  replicasSyncing: boolean;
  /** A text of the layout, to tell whether it changed. */
  layout: string;
}

export class SlotMap {
  readonly nodes = new Map<string, ClusterNode>();
  readonly nodeOfConn = new Map<Connection, ClusterNode>();
  slots: Array<SlotOwner | undefined> = new Array(SLOT_COUNT).fill(undefined);
  masters: ClusterNode[] = [];
  private nextMaster = 0;
  private nextReplica = 0;

  constructor(
    private readonly open: (options: ConnectionOptions) => Connection,
    private readonly template: ConnectionOptions,
    private readonly readFrom: ReadFrom,
    private readonly natMap: ClusterOptions['natMap'],
    /** The host to use when a node announces none: the one the first seed was reached at. */
    private readonly anyHost: () => string,
  ) {}

  /** The connection to the master of `slot`, or undefined when no node is known to serve it. */
  masterOf(slot: number): Connection | undefined {
    const owner = this.slots[slot];
    return owner === undefined ? undefined : this.primary(owner.master);
  }

  /** Where a command of `owner`'s slots with these command flags goes (readFrom for reads). */
  connFor(owner: SlotOwner, flags: number): Connection {
    if (this.readFrom !== 'master' && (flags & CommandFlag.ReadOnly) !== 0 && (flags & CommandFlag.Write) === 0 && owner.replicas.length !== 0) {
      const replica = owner.replicas[this.nextReplica++ % owner.replicas.length]!;
      const conn = this.reader(replica);
      if (this.readFrom === 'replica' || conn.state === 'ready') return conn;
    }
    return this.primary(owner.master);
  }

  /** Keyless commands (PING, INFO, SCRIPT LOAD...) go to one master, taken in turn. */
  nextMasterConnection(): Connection {
    return this.primary(this.masters[this.nextMaster++ % this.masters.length]!);
  }

  primary(node: ClusterNode): Connection {
    if (node.conn === undefined || node.conn.state === 'closed') {
      node.conn = this.open({ ...this.template, host: node.host, port: node.port });
      this.nodeOfConn.set(node.conn, node);
    }
    return node.conn;
  }

  private reader(node: ClusterNode): Connection {
    if (node.readConn === undefined || node.readConn.state === 'closed') {
      node.readConn = this.open({ ...this.template, host: node.host, port: node.port, readOnly: true });
      this.nodeOfConn.set(node.readConn, node);
    }
    return node.readConn;
  }

  /** The node at an address a reply or a map names (after natMap), made if new. */
  nodeAt(to: NodeAddress): ClusterNode {
    const addr = this.mapAddress({ host: to.host === '' ? this.anyHost() : to.host, port: to.port });
    const key = `${addr.host}:${addr.port}`;
    let node = this.nodes.get(key);
    if (node === undefined) {
      node = new ClusterNode(key, addr.host, addr.port);
      this.nodes.set(key, node);
    }
    return node;
  }

  private mapAddress(addr: NodeAddress): NodeAddress {
    const nat = this.natMap;
    if (nat === undefined) return addr;
    if (typeof nat === 'function') return nat(addr);
    return nat[`${addr.host}:${addr.port}`] ?? addr;
  }

  /** Learns one slot's new master from a MOVED; the next refresh learns the rest. */
  moved(slot: number, node: ClusterNode): void {
    if (this.slots[slot]?.master !== node) this.slots[slot] = { master: node, replicas: [] };
    if (!this.masters.includes(node)) this.masters.push(node);
  }

  retire(conn: Connection): void {
    this.nodeOfConn.delete(conn);
    this.retiring.add(conn);
    conn.close().catch(() => {}).then(() => this.retiring.delete(conn));
  }

  /** Connections this map no longer uses, closing gracefully: what they still answer may redirect. */
  readonly retiring = new Set<Connection>();

  /**
   * Replaces the map with `shards`. `fence` is told, before any connection is let go, which
   * slots change hands from which old connection. `seedConns` (the connections a refresh may
   * start from) is refilled with the masters' connections.
   */
  apply(shards: TopologyShard[], seedConns: Connection[], fence: (slots: number[], old: Connection) => void): MapChange {
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
    for (const [conn, list] of moving) fence(list, conn);

    // Connections this map no longer uses close gracefully: what they have in flight is
    // answered (a demoted master answers MOVED, which is followed); what they still queue is
    // rejected unwritten and comes back to the cluster to be routed again.
    for (const node of [...this.nodes.values()]) {
      const serving = used.has(node);
      if (node.conn !== undefined && (!serving || node.role !== 'master')) {
        this.retire(node.conn);
        node.conn = undefined;
      }
      if (node.readConn !== undefined && (!serving || node.role !== 'replica' || node.health !== 'online' || this.readFrom === 'master')) {
        this.retire(node.readConn);
        node.readConn = undefined;
      }
      if (!serving) this.nodes.delete(node.key);
    }
    // A seed that is a master serves as its connection; every master gets one now, so the
    // first batch finds them ready.
    for (const conn of seedConns) {
      const o = conn.resolvedOptions;
      const node = this.nodes.get(`${o.host}:${o.port}`);
      if (node !== undefined && node.role === 'master' && node.conn === undefined && conn.state !== 'closed' && !o.readOnly) {
        node.conn = conn;
        this.nodeOfConn.set(conn, node);
      }
    }
    for (const m of masters) this.primary(m);
    for (const conn of seedConns.splice(0)) {
      if (!this.nodeOfConn.has(conn)) this.retire(conn);
    }
    seedConns.push(...masters.map((m) => m.conn!)); // later refreshes may start from any of them

    const layout = shards.map((s) => `${s.master.host}:${s.master.port}=${s.slots.map((r) => r.join('-')).join(',')}/${s.replicas.length}`).sort().join(' ');
    return { replicasSyncing, layout };
  }

  /** Every node in the map, masters first. */
  info(): ClusterNodeInfo[] {
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
    for (const node of this.nodes.values()) {
      out.push({
        address: node.key, id: node.id, role: node.role, slots: slotsOf.get(node) ?? [],
        masterAddress: node.role === 'replica' ? node.masterKey : undefined,
        connection: (node.conn ?? node.readConn)?.state ?? 'none',
      });
    }
    return out.sort((a, b) => (a.role === b.role ? a.address.localeCompare(b.address) : a.role === 'master' ? -1 : 1));
  }
}
