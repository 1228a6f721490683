/**
 * loop.transaction(): optimistic locking on a connection lent by the pool (pool.ts). WATCH lives
 * only on that connection; when EXEC answers null (a WATCHed key changed) the callback runs
 * again, up to maxAttempts.
 */
import type { Connection } from '../../connection/connection.js';
import { Future, type UnobservedErrorSink } from '../../core/future.js';
import type { Arg } from '../../protocol/encoder.js';
import type { CommandTarget } from '../../connection/target.js';
import { ClientStateError, ConfigError, ReplyError, TransactionRetryError } from '../../base/errors.js';
import { multi, type BlockCommand } from '../multi.js';
import { MAX_TIMER_MS, unknownOptionError } from '../../base/options.js';
import { lend, type Lender, type LendOptions, type LentState } from './pool.js';
import { backoffDelay } from './key-queue.js';

export interface TransactionOptions extends LendOptions {
  /**
   * How many times the callback may run while EXEC answers null because a writer outside this
   * loop changed a WATCHed key; then TransactionRetryError. Transactions of this loop naming the
   * same key on the same node never abort each other (they run one after another). Default 16.
   */
  maxAttempts?: number;
  /** ms: the first retry after an abort waits up to this long (jittered), doubling per abort. Default 5. */
  backoffBase?: number;
  /** ms: the longest a retry waits after an abort, before jitter. Default 500. */
  backoffMax?: number;
}

const DEFAULT_MAX_ATTEMPTS = 16;
const DEFAULT_BACKOFF_BASE_MS = 5;
const DEFAULT_BACKOFF_MAX_MS = 500;

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
  send<T = any>(command: readonly [string, ...Arg[]], options?: { timeout?: number; returnBuffers?: boolean; bigInt?: boolean; resp3?: boolean }): Future<T> {
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

/** The options transaction() takes: the lending pool's and its own. */
const TRANSACTION_OPTIONS = ['poolSize', 'acquireTimeout', 'maxAttempts', 'backoffBase', 'backoffMax'] as const;

/**
 * Optimistic locking: runs `fn` with a dedicated connection to the node that serves `key`.
 * Transactions of this loop that name the same key on the same node run one after another, so
 * they never abort each other. When exec() answers null (a writer outside the loop changed a
 * WATCHed key) `fn` runs again after a jittered backoff, up to maxAttempts runs, then
 * TransactionRetryError. Resolves to what the last run of `fn` returned.
 */
export function transaction<T>(lender: Lender, target: CommandTarget, key: Arg | null, fn: (tx: Transaction) => T | Promise<T>, options?: TransactionOptions): Promise<T> {
  if (typeof fn !== 'function') return Promise.reject(new TypeError('transaction(target, key, fn): fn must be a function'));
  const unknown = unknownOptionError(options, TRANSACTION_OPTIONS, 'transaction()');
  if (unknown !== undefined) return Promise.reject(unknown);
  const maxAttempts = options?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) return Promise.reject(new ConfigError(`maxAttempts must be a positive integer, got ${String(maxAttempts)}`));
  const base = options?.backoffBase ?? DEFAULT_BACKOFF_BASE_MS;
  const max = options?.backoffMax ?? DEFAULT_BACKOFF_MAX_MS;
  for (const [name, v] of [['backoffBase', base], ['backoffMax', max]] as const) {
    if (typeof v !== 'number' || !(v >= 0) || v > MAX_TIMER_MS) return Promise.reject(new ConfigError(`${name} must be a number of ms from 0 to ${MAX_TIMER_MS}, got ${String(v)}`));
  }
  return lend(lender, target, key, options, async (conn, state) => {
    for (let attempt = 1; ; attempt++) {
      const tx = new Transaction(lender, conn, attempt, state);
      const result = await fn(tx);
      if (!tx.aborted) return result;
      if (attempt >= maxAttempts) throw new TransactionRetryError(maxAttempts);
      if (conn.state === 'closed') throw new ClientStateError('transaction: its dedicated connection closed');
      const delay = backoffDelay(attempt, base, max);
      if (delay >= 1) await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }, false, true);
}
