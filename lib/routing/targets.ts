/**
 * What a target is, said once for every feature: its kind, the check of a target argument
 * (one message, one error class), and opening a connection like one a target already has.
 */
import { Connection, type ConnectionObserver } from '../connection/connection.js';
import { kConnect } from '../base/internal.js';
import type { LoopPort } from './loop-port.js';
import type { CommandTarget } from '../connection/target.js';
import type { ConnectionOptions } from '../base/options.js';
import { Cluster } from './cluster/cluster.js';
import { ShardSet } from './shards.js';
import { Sentinel } from './sentinel/sentinel.js';

/**
 * 'connection': the caller picks the server; 'cluster' and 'shards': a router picks it from the
 * keys; 'other': a CommandTarget of the caller's own making, which only takes commands.
 */
export type TargetKind = 'connection' | 'cluster' | 'shards' | 'sentinel' | 'other';

export function targetKind(target: CommandTarget): TargetKind {
  if (target instanceof Connection) return 'connection';
  if (target instanceof Cluster) return 'cluster';
  if (target instanceof ShardSet) return 'shards';
  if (target instanceof Sentinel) return 'sentinel';
  return 'other';
}

/** A cluster or a shard set: a target that routes by key and has master connections. */
export type Router = Cluster | ShardSet;

export function isRouter(target: CommandTarget): target is Router {
  return target instanceof Cluster || target instanceof ShardSet;
}

/**
 * Targets with master connections a feature can list and follow (`masterConnections`,
 * `connectionFor`, `whenReady`): a router, or a sentinel target (its one master, which moves).
 */
export type MasterSet = Router | Sentinel;

export function hasMasters(target: CommandTarget): target is MasterSet {
  return target instanceof Cluster || target instanceof ShardSet || target instanceof Sentinel;
}

/** Targets whose masters move and that say so ('topology', refresh()): a cluster or a sentinel target. */
export function followsMoves(target: CommandTarget): target is Cluster | Sentinel {
  return target instanceof Cluster || target instanceof Sentinel;
}

/**
 * Why `target` cannot be used by `loop` (a TypeError: a wrong argument), or undefined. Every
 * method that takes a target asks this first; `what` names the method in the message.
 */
export function checkTarget(target: unknown, loop: unknown, what?: string): TypeError | undefined {
  const prefix = what === undefined ? '' : `${what}: `;
  if (target === null || typeof target !== 'object' || typeof (target as Partial<CommandTarget>).submit !== 'function') {
    return new TypeError(`${prefix}target must be a Connection from loop.connect(), a cluster or a shard set, got ${target === null ? 'null' : typeof target}`);
  }
  if ((target as CommandTarget).loop !== loop) return new TypeError(`${prefix}target belongs to another EventLoop`);
  return undefined;
}

/** checkTarget, thrown. */
export function assertTarget(target: unknown, loop: unknown, what?: string): asserts target is CommandTarget {
  const bad = checkTarget(target, loop, what);
  if (bad !== undefined) throw bad;
}

/** "host:port" of a connection (its address is "host:port/db"), as cluster nodes are named. */
export function hostPort(conn: Connection): string {
  const slash = conn.address.lastIndexOf('/');
  return slash === -1 ? conn.address : conn.address.slice(0, slash);
}

/**
 * A new connection of `like`'s loop to the same server with the same options (credentials, TLS,
 * db, timeouts), but for `overrides`: for features that need a connection of their own
 * (subscriptions, massInsert with replies off, the lending pool). `observer` hears of its
 * lifecycle.
 */
export function openLike(like: Connection, overrides: ConnectionOptions = {}, observer?: ConnectionObserver): Connection {
  return (like.loop as LoopPort)[kConnect]({ ...(like.resolvedOptions as unknown as ConnectionOptions), ...overrides }, observer);
}
