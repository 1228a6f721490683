/**
 * Lent connections: a small pool per node of dedicated connections, opened with the options of
 * the target's own connection to that node, for what must not share one: WATCH (its state is the
 * connection's, so on a shared one it would watch for everybody) and blocking commands (they
 * hold up every reply behind them).
 *
 * A connection goes back to the pool clean, or not at all: after a callback that threw, left a
 * WATCH, or left replies in flight, UNWATCH (and DISCARD after a throw) go out behind whatever it
 * sent; a connection that does not answer them in time, or is not ready, is destroyed instead of
 * pooled. A pool never opens more than its limit: callers beyond it wait their turn, in order.
 */
import type { Connection } from '../../connection/connection.js';
import { Future, type UnobservedErrorSink } from '../../core/future.js';
import type { ConnectionOptions } from '../../base/options.js';
import type { Arg } from '../../protocol/encoder.js';
import type { CommandTarget } from '../../connection/target.js';
import { ClientStateError, ReplyError, RoutingError, TransactionRetryError } from '../../base/errors.js';
import { ask } from '../../routing/ask.js';
import { SlotRouter } from '../../routing/router.js';
import { currentConnection, isMovingTarget } from '../../connection/current.js';
import { multi, type BlockCommand } from '../multi.js';

/** What lending needs from the loop (the EventLoop, without importing it). */
export interface Lender extends UnobservedErrorSink {
  connect(options: ConnectionOptions): Connection;
  send<T = any>(target: CommandTarget, command: readonly [string, ...Arg[]], options?: { timeout?: number; returnBuffers?: boolean; bigInt?: boolean }): Future<T>;
}

export interface LendOptions {
  /**
   * Most dedicated connections per node (lent and idle together); callers beyond it wait.
   * Read when a node's pool is first made. Default 4.
   */
  poolSize?: number;
}

export interface TransactionOptions extends LendOptions {
  /** How many times the callback runs while EXEC keeps answering null (a WATCHed key changed). Default 16. */
  maxAttempts?: number;
}

const DEFAULT_POOL_SIZE = 4;
const DEFAULT_MAX_ATTEMPTS = 16;
/** How long cleaning a returned connection may take before it is destroyed instead. */
const CLEAN_TIMEOUT_MS = 2000;

/** What a lent connection may have left behind, as far as the lending code can tell. */
interface LentState {
  watching: boolean;
}

class NodePool {
  private readonly idle: Connection[] = [];
  private readonly waiters: Array<{ resolve: (c: Connection) => void; reject: (e: Error) => void }> = [];
  /** Connections of this pool that exist: lent plus idle. Never above `limit`. */
  size = 0;
  /** Most connections lent at once so far (for tests and tuning). */
  peak = 0;
  private lent = 0;

  constructor(private readonly lender: Lender, private readonly options: ConnectionOptions, readonly limit: number) {}

  acquire(): Promise<Connection> {
    while (this.idle.length !== 0) {
      const conn = this.idle.pop()!;
      if (conn.state !== 'closed') return Promise.resolve(this.lend(conn));
      this.size--;
    }
    if (this.size < this.limit) {
      let conn: Connection;
      try {
        conn = this.lender.connect(this.options);
      } catch (err) {
        return Promise.reject(err);
      }
      this.size++;
      return Promise.resolve(this.lend(conn));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
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
      const w = this.waiters.shift();
      if (w !== undefined) this.acquire().then(w.resolve, w.reject);
      return;
    }
    const w = this.waiters.shift();
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
  if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`poolSize must be a positive integer, got ${String(limit)}`);
  let pool = pools.get(id);
  if (pool === undefined) {
    pool = new NodePool(lender, { ...o, readOnly: false }, limit);
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
  if (target instanceof SlotRouter) {
    if (key === null || key === undefined) throw new RoutingError('a cluster or shard set needs a key to pick the node to lend a connection of');
    await target.whenReady();
    return (target as SlotRouter & { connectionFor(key: Arg): Connection }).connectionFor(key);
  }
  if (target === null || typeof target !== 'object' || typeof (target as Partial<Connection>).resolvedOptions !== 'object') {
    throw new TypeError('target must be a Connection, a cluster or a shard set of this loop');
  }
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

async function lend<T>(
  lender: Lender, target: CommandTarget, key: Arg | null, options: LendOptions | undefined,
  body: (conn: Connection, state: LentState) => Promise<T>, alwaysClean: boolean,
): Promise<T> {
  if (target?.loop !== lender) throw new TypeError('target must be a Connection, a cluster or a shard set of this loop');
  const pool = poolFor(lender, await sharedConnection(target, key), options);
  const conn = await pool.acquire();
  const state: LentState = { watching: false };
  let threw = true;
  try {
    const result = await body(conn, state);
    threw = false;
    return result;
  } finally {
    const dirty = alwaysClean || threw || state.watching || conn.pendingReplies !== 0;
    pool.release(conn, dirty ? await clean(conn, threw) : conn.state !== 'closed');
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
  return lend(lender, target, key, options, async (conn) => fn(conn), true);
}

/** The handle a transaction's callback gets: commands on its dedicated connection. */
export class Transaction {
  /** Set when exec() answered null in this attempt: the callback runs again. */
  aborted = false;

  /** @internal */
  constructor(
    private readonly lender: Lender,
    /** The dedicated connection (WATCH lives here and nowhere else). */
    readonly connection: Connection,
    /** 1 for the first run of the callback, 2 after one abort, ... */
    readonly attempt: number,
    private readonly state: LentState,
  ) {}

  /** Sends one command on the dedicated connection (WATCH, GET...); MULTI/EXEC go through exec(). */
  send<T = any>(command: readonly [string, ...Arg[]], options?: { timeout?: number; returnBuffers?: boolean; bigInt?: boolean }): Future<T> {
    const name = Array.isArray(command) && typeof command[0] === 'string' ? command[0].toUpperCase() : '';
    if (name === 'MULTI' || name === 'EXEC' || name === 'DISCARD') {
      const f = new Future<T>(name, false, this.lender);
      f.rejectReply(new TypeError(`transaction: send ${name} through tx.exec(commands), which writes MULTI ... EXEC as one block`));
      return f;
    }
    if (name === 'WATCH') this.state.watching = true;
    else if (name === 'UNWATCH') this.state.watching = false;
    return this.lender.send<T>(this.connection, command, options);
  }

  /**
   * MULTI, `commands`, EXEC as one block on the dedicated connection. Resolves to EXEC's
   * replies, or null when a WATCHed key changed (the transaction then runs the callback again).
   */
  exec(commands: readonly BlockCommand[]): Future<unknown[] | null> {
    const f = multi(this.lender as UnobservedErrorSink & object, this.connection, commands);
    // EXEC ends every WATCH, whatever it answers; a block that never got written did not.
    f.then((reply) => {
      this.state.watching = false;
      if (reply === null) this.aborted = true;
    }, (err: Error) => {
      if (err instanceof ReplyError) this.state.watching = false;
    });
    return f;
  }
}

/**
 * Optimistic locking: runs `fn` with a dedicated connection to the node that serves `key`; when
 * its exec() answers null (a WATCHed key changed) `fn` runs again, up to maxAttempts, then
 * TransactionRetryError. Resolves to what the last run of `fn` returned.
 */
export function transaction<T>(lender: Lender, target: CommandTarget, key: Arg | null, fn: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T> {
  if (typeof fn !== 'function') return Promise.reject(new TypeError('transaction(target, key, fn): fn must be a function'));
  const maxAttempts = options?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) return Promise.reject(new TypeError(`maxAttempts must be a positive integer, got ${String(maxAttempts)}`));
  return lend(lender, target, key, options, async (conn, state) => {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const tx = new Transaction(lender, conn, attempt, state);
      const result = await fn(tx);
      if (!tx.aborted) return result;
      if (conn.state === 'closed') throw new ClientStateError('transaction: its dedicated connection closed');
    }
    throw new TransactionRetryError(maxAttempts);
  }, false);
}
