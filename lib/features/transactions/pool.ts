/**
 * The lending pool (the Transaction handle is in transaction.ts). Lent connections: a small pool per node of dedicated connections, opened with the options of
 * the target's own connection to that node, for what must not share one: WATCH (its state is the
 * connection's, so on a shared one it would watch for everybody) and blocking commands (they
 * hold up every reply behind them).
 *
 * A connection goes back to the pool clean, or not at all: after a callback that threw, left a
 * WATCH, or left replies in flight, UNWATCH (and DISCARD after a throw) go out behind whatever it
 * sent; a connection that does not answer them in time, or is not ready, is destroyed instead of
 * pooled. A pool never opens more than its limit: callers beyond it wait their turn, in order,
 * for at most acquireTimeout. Callers that ask for it (transactions) also take turns per node and
 * key (key-queue.ts).
 */
import type { Connection } from '../../connection/connection.js';
import type { FeatureLoop } from '../../core/loop-port.js';
import type { Arg } from '../../protocol/encoder.js';
import type { CommandTarget } from '../../connection/target.js';
import { ConfigError, NestedTransactionError, ReplyError, RoutingError, TimeoutError } from '../../base/errors.js';
import { MAX_TIMER_MS, unknownOptionError } from '../../base/options.js';
import { keyIdentity, KeyQueues, type HeldTurn } from './key-queue.js';
import { ask } from '../../routing/ask.js';
import { assertTarget, openLike, targetKind, type Router } from '../../routing/targets.js';
import { currentConnection, isMovingTarget } from '../../connection/current.js';

/** What lending needs from the loop: the features' port. */
export type Lender = FeatureLoop;

export interface LendOptions {
  /**
   * Most dedicated connections per node (lent and idle together); callers beyond it wait.
   * Read when a node's pool is first made. Default 4.
   */
  poolSize?: number;
  /**
   * ms a caller waits for a connection of the pool when all are lent, before it rejects with a
   * TimeoutError (0 for no limit). Default 10000.
   */
  acquireTimeout?: number;
}

const DEFAULT_POOL_SIZE = 4;
const DEFAULT_ACQUIRE_TIMEOUT_MS = 10_000;
/** How long cleaning a returned connection may take before it is destroyed instead. */
const CLEAN_TIMEOUT_MS = 2000;

/** What a lent connection may have left behind, as far as the lending code can tell. */
export interface LentState {
  watching: boolean;
}

interface PoolWaiter {
  resolve: (c: Connection) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

class NodePool {
  private readonly idle: Connection[] = [];
  private readonly waiters: PoolWaiter[] = [];
  /** Connections of this pool that exist: lent plus idle. Never above `limit`. */
  size = 0;
  /** Most connections lent at once so far (for tests and tuning). */
  peak = 0;
  private lent = 0;

  /** `like`: the target's own connection to the node; the pool's are opened like it, but never READONLY. */
  constructor(private readonly like: Connection, readonly limit: number) {}

  /** The node's address, as its connections name it. */
  get address(): string {
    return this.like.address;
  }

  /** A connection: an idle one, a new one below the limit, or the next one returned within `timeoutMs` (0: no limit). */
  acquire(timeoutMs = 0): Promise<Connection> {
    while (this.idle.length !== 0) {
      const conn = this.idle.pop()!;
      if (conn.state !== 'closed') return Promise.resolve(this.lend(conn));
      this.size--;
    }
    if (this.size < this.limit) {
      let conn: Connection;
      try {
        // A lent connection never answers from the cache: a read after WATCH must see the server's value.
        conn = openLike(this.like, { readOnly: false, cache: false });
      } catch (err) {
        return Promise.reject(err);
      }
      this.size++;
      return Promise.resolve(this.lend(conn));
    }
    return new Promise((resolve, reject) => {
      const w: PoolWaiter = { resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        w.timer = setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i !== -1) this.waiters.splice(i, 1);
          reject(new TimeoutError(`no connection of the lending pool to ${this.address} came free within ${timeoutMs}ms (acquireTimeout): ` +
            `all ${this.limit} are lent (poolSize); raise poolSize or acquireTimeout, or hold lent connections for less time`));
        }, timeoutMs);
      }
      this.waiters.push(w);
    });
  }

  private nextWaiter(): PoolWaiter | undefined {
    const w = this.waiters.shift();
    if (w?.timer !== undefined) clearTimeout(w.timer);
    return w;
  }

  private lend(conn: Connection): Connection {
    this.lent++;
    if (this.lent > this.peak) this.peak = this.lent;
    return conn;
  }

  /** Back from a borrower: to the next waiter, to the idle list, or destroyed if not clean. */
  release(conn: Connection, clean: boolean): void {
    this.lent--;
    if (!clean || conn.state === 'closed') {
      if (conn.state !== 'closed') conn.disconnect('a lent connection could not be cleaned after use');
      this.size--;
      const w = this.nextWaiter();
      if (w !== undefined) this.acquire().then(w.resolve, w.reject);
      return;
    }
    const w = this.nextWaiter();
    if (w !== undefined) w.resolve(this.lend(conn));
    else this.idle.push(conn);
  }
}

const poolsOf = new WeakMap<object, Map<string, NodePool>>();

/** The pool of the node whose shared connection is `shared`. */
function poolFor(lender: Lender, shared: Connection, options: LendOptions | undefined): NodePool {
  let pools = poolsOf.get(lender);
  if (pools === undefined) poolsOf.set(lender, pools = new Map());
  const o = shared.resolvedOptions;
  const id = `${shared.address}|${o.username ?? ''}|${o.tls ? 'tls' : ''}`;
  const limit = options?.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isInteger(limit) || limit < 1) throw new ConfigError(`poolSize must be a positive integer, got ${String(limit)}`);
  let pool = pools.get(id);
  if (pool === undefined) {
    pool = new NodePool(shared, limit);
    pools.set(id, pool);
  }
  return pool;
}

/** @internal The lending pool of the node `target` uses for `key` (for tests: size, peak, limit). */
export async function lendingPool(lender: Lender, target: CommandTarget, key: Arg | null, options?: LendOptions): Promise<{ readonly size: number; readonly peak: number; readonly limit: number }> {
  return poolFor(lender, await sharedConnection(target, key), options);
}

/** The target's own connection to the node that serves `key`. */
async function sharedConnection(target: CommandTarget, key: Arg | null): Promise<Connection> {
  if (isMovingTarget(target)) return target[currentConnection](); // a sentinel's master, now
  const kind = targetKind(target);
  if (kind === 'cluster' || kind === 'shards') {
    if (key === null || key === undefined) throw new RoutingError('a cluster or shard set needs a key to pick the node to lend a connection of');
    const router = target as Router;
    await router.whenReady();
    return router.connectionFor(key as string | Buffer | number);
  }
  if (kind !== 'connection') throw new TypeError('withConnection()/transaction(): the target must be a Connection, a cluster or a shard set: a lent connection is opened like its own');
  return target as Connection;
}

/** Sends what a borrower may have left open; false if the connection cannot be trusted after. */
async function clean(conn: Connection, discard: boolean): Promise<boolean> {
  if (conn.state === 'closed') return false;
  try { // (a connection still connecting sends them once it is ready)
    const pending: Promise<unknown>[] = [];
    // DISCARD outside MULTI is an error reply, which is fine: it only has to end a MULTI if one is open.
    if (discard) pending.push(ask(conn, ['DISCARD'], CLEAN_TIMEOUT_MS).catch((e: Error) => { if (!(e instanceof ReplyError)) throw e; }));
    pending.push(ask(conn, ['UNWATCH'], CLEAN_TIMEOUT_MS));
    await Promise.all(pending);
    return conn.state === 'ready';
  } catch {
    return false; // a blocking command still holds it, or it went away
  }
}

const keyQueuesOf = new WeakMap<object, KeyQueues>();

function acquireTimeoutOf(options: LendOptions | undefined): number {
  const t = options?.acquireTimeout ?? DEFAULT_ACQUIRE_TIMEOUT_MS;
  if (typeof t !== 'number' || !(t >= 0) || t > MAX_TIMER_MS) throw new ConfigError(`acquireTimeout must be a number of ms from 0 (no limit) to ${MAX_TIMER_MS}, got ${String(t)}`);
  return t;
}

export async function lend<T>(
  lender: Lender, target: CommandTarget, key: Arg | null, options: LendOptions | undefined,
  body: (conn: Connection, state: LentState) => Promise<T>, alwaysClean: boolean,
  /** Callers of this loop with the same key on the same node take turns (transactions). */
  queueByKey = false,
): Promise<T> {
  assertTarget(target, lender);
  const acquireTimeout = acquireTimeoutOf(options);
  const pool = poolFor(lender, await sharedConnection(target, key), options);
  let turn: string | undefined;
  let queues: KeyQueues | undefined;
  if (queueByKey && key !== null && key !== undefined) {
    queues = keyQueuesOf.get(lender);
    if (queues === undefined) keyQueuesOf.set(lender, queues = new KeyQueues());
    const id = `${pool.address}\0${keyIdentity(key)}`;
    if (queues.heldHere(id)) throw new NestedTransactionError(pool.address);
    await queues.enter(id);
    turn = id;
  }
  try {
    const conn = await pool.acquire(acquireTimeout);
    const state: LentState = { watching: false };
    let threw = true;
    let held: HeldTurn | undefined;
    try {
      let running: Promise<T>;
      if (turn !== undefined) ({ turn: held, result: running } = queues!.runHolding(turn, body, conn, state));
      else running = body(conn, state);
      const result = await running;
      threw = false;
      return result;
    } finally {
      if (held !== undefined) queues!.release(held);
      const dirty = alwaysClean || threw || state.watching || conn.pendingReplies !== 0;
      pool.release(conn, dirty ? await clean(conn, threw) : conn.state !== 'closed');
    }
  } finally {
    if (turn !== undefined) queues!.leave(turn);
  }
}

/**
 * `fn` gets a connection of its own to the node that serves `key` (any key for a Connection
 * target), for blocking commands (BLPOP...) or anything that changes a connection's state. It
 * goes back to the pool when `fn` settles: UNWATCHed (and DISCARDed if `fn` threw), or
 * destroyed if it cannot be cleaned (a blocking command is still running on it).
 */
export function withConnection<T>(lender: Lender, target: CommandTarget, key: Arg | null, fn: (conn: Connection) => T | Promise<T>, options?: LendOptions): Promise<T> {
  if (typeof fn !== 'function') return Promise.reject(new TypeError('withConnection(target, key, fn): fn must be a function'));
  const unknown = unknownOptionError(options, ['poolSize', 'acquireTimeout'], 'withConnection()');
  if (unknown !== undefined) return Promise.reject(unknown);
  return lend(lender, target, key, options, async (conn) => fn(conn), true);
}
