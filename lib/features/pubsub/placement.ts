/**
 * Where a subscription's channels live: channels and patterns on one connection ("main": on a
 * cluster any node will do, the cluster broadcasts), each sharded channel on a connection to the
 * node that owns its slot, moved when the map says it moved. Every connection is the
 * subscription's own, opened like the target's connection to that node.
 */
import type { Connection, ConnectionObserver } from '../../connection/connection.js';
import type { CommandTarget } from '../../connection/target.js';
import { ClientStateError } from '../../base/errors.js';
import { hostPort, hasMasters, openLike } from '../../routing/targets.js';
import { SubConn, type Channel, type Kind, type SubConnEvents } from './sub-connection.js';

export class Placement {
  /** The connection for channels and patterns (one node; the cluster broadcasts). */
  main: SubConn | undefined;
  /** Connections for sharded channels, by node address (the main one included if it is the owner). */
  readonly byAddress = new Map<string, SubConn>();
  /** Where each sharded channel is assigned now. */
  private readonly shardHome = new Map<string, SubConn>();
  /** Sharded channels whose owner is not known yet (the map lags a move). */
  readonly homeless = new Set<string>();

  constructor(
    private readonly target: CommandTarget,
    private readonly wanted: Readonly<Record<Kind, Map<string, Channel>>>,
    private readonly events: SubConnEvents,
    /** Told of the lifecycle of each connection opened here (the subscription's, and only those). */
    private readonly observer: ConnectionObserver,
    private readonly returnBuffers: boolean,
  ) {}

  /** Assigns every wanted item to a connection and sends what is missing. */
  placeAll(): void {
    const needsMain = this.wanted.c.size + this.wanted.p.size !== 0 || !hasMasters(this.target);
    if (needsMain) {
      const main = this.main ??= this.open(this.mainConnection());
      for (const k of ['c', 'p'] as const) {
        main.assigned[k] = new Set(this.wanted[k].keys());
      }
    }
    this.routeSharded();
    this.syncAll();
  }

  /** Puts each wanted sharded channel on the connection to its slot's owner (moving it if it changed). */
  routeSharded(): void {
    for (const sc of this.subConns()) for (const key of sc.assigned.s) if (!this.wanted.s.has(key)) sc.assigned.s.delete(key);
    for (const key of [...this.shardHome.keys()]) if (!this.wanted.s.has(key)) this.shardHome.delete(key);
    for (const [key, ch] of this.wanted.s) {
      let home: SubConn;
      if (!hasMasters(this.target)) {
        home = this.main ??= this.open(this.target as Connection);
      } else {
        let owner: Connection;
        try { owner = this.target.connectionFor(ch); } catch { this.homeless.add(key); continue; }
        home = this.byAddress.get(hostPort(owner)) ?? this.open(owner);
      }
      const old = this.shardHome.get(key);
      if (old !== home) {
        old?.assigned.s.delete(key);
        this.shardHome.set(key, home);
      }
      home.assigned.s.add(key);
      this.homeless.delete(key);
    }
    // A node that has nothing left to serve is let go.
    for (const [address, sc] of this.byAddress) {
      if (sc !== this.main && sc.empty && sc.isSettled()) {
        this.byAddress.delete(address);
        void sc.conn.close();
      }
    }
    this.syncAll();
  }

  syncAll(): void {
    for (const sc of this.subConns()) sc.sync();
  }

  private mainConnection(): Connection {
    if (!hasMasters(this.target)) return this.target as Connection;
    const masters = this.target.masterConnections;
    const ready = masters.filter((c) => c.state === 'ready');
    const pool = ready.length !== 0 ? ready : masters;
    if (pool.length === 0) throw new ClientStateError('subscribe(): the cluster knows no node yet');
    return pool[Math.floor(Math.random() * pool.length)]!;
  }

  /** A subscriber connection opened like `like` (same server, credentials, TLS). */
  private open(like: Connection): SubConn {
    const address = hostPort(like);
    const sc = new SubConn(this.events, openLike(like, { returnBuffers: this.returnBuffers, readOnly: false, cache: false }, this.observer), address);
    this.byAddress.set(address, sc);
    return sc;
  }

  /**
   * Moves channels and patterns off `old` to another node (a cluster broadcasts, any node will
   * do); false when no other node is ready (keep reconnecting to the same one).
   */
  replaceMain(old: SubConn): boolean {
    if (!hasMasters(this.target)) return false;
    const others = this.target.masterConnections.filter((c) => hostPort(c) !== old.address && c.state === 'ready');
    if (others.length === 0) return false;
    const next = this.byAddress.get(hostPort(others[0]!)) ?? this.open(others[0]!);
    next.assigned.c = new Set(this.wanted.c.keys());
    next.assigned.p = new Set(this.wanted.p.keys());
    this.main = next;
    old.assigned.c.clear();
    old.assigned.p.clear();
    if (old.empty) {
      if (this.byAddress.get(old.address) === old) this.byAddress.delete(old.address);
      void old.conn.close();
    }
    next.sync();
    return true;
  }

  /** `sc`'s node is gone for good: its sharded channels wait for a new home. */
  dropNode(sc: SubConn): void {
    for (const [a, s] of this.byAddress) if (s === sc) this.byAddress.delete(a);
    for (const key of sc.assigned.s) this.homeless.add(key);
  }

  subConns(): Set<SubConn> {
    const all = new Set(this.byAddress.values());
    if (this.main !== undefined) all.add(this.main);
    return all;
  }

  find(conn: Connection): SubConn | undefined {
    for (const sc of this.subConns()) if (sc.conn === conn) return sc;
    return undefined;
  }

  isConfirmed(k: Kind, key: string): boolean {
    const home = k === 's' ? this.shardHome.get(key) : this.main;
    return home !== undefined && home.confirmed[k].has(key);
  }

  isConfirmedAnywhere(k: Kind, key: string): boolean {
    for (const sc of this.subConns()) if (sc.confirmed[k].has(key)) return true;
    return false;
  }

  allSettled(): boolean {
    if (this.homeless.size !== 0) return false;
    for (const sc of this.subConns()) if (!sc.isSettled()) return false;
    return true;
  }
}
