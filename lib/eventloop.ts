/**
 * EventLoop: owns every connection, validates and encodes commands, flushes every dirty
 * connection once per tick, reports errors nobody listened for, and closes everything.
 */
import { EventEmitter } from 'eventemitter3';
import { inspect } from 'node:util';
import { Connection } from './connection.js';
import { Future } from './future.js';
import type { CommandTarget } from './target.js';
import { checkCommandName, encodeCommand, type Arg } from './protocol/encoder.js';
import { concealSecrets, MAX_TIMER_MS, resolveOptions, type ConnectionOptions } from './options.js';
import { ClientStateError, TimeoutError } from './errors.js';
import { massInsert, type MassInsertOptions, type MassInsertReport, type MassInsertSource } from './massinsert.js';

/** Options for one command, for `loop.send()`. */
export interface CommandOptions {
  /** Decode this reply's strings as Buffers (overrides the connection's setting). */
  returnBuffers?: boolean;
  /** Decode this reply's integers as bigints, exact beyond 2^53 (overrides the connection's setting). */
  bigInt?: boolean;
  /** ms to wait for this reply (overrides commandTimeout; uses a timer of its own). */
  timeout?: number;
}

export interface ReconnectingInfo {
  attempt: number;
  delay: number;
  error: Error;
}

/** Events the loop emits; every connection event names its connection. */
export interface EventLoopEvents {
  connect: (conn: Connection) => void;
  ready: (conn: Connection) => void;
  error: (err: Error, conn: Connection) => void;
  close: (conn: Connection, reason: Error) => void;
  reconnecting: (info: ReconnectingInfo, conn: Connection) => void;
  /** The connection is closed for good. */
  end: (conn: Connection) => void;
  /** A command failed and nobody had awaited its future by the next macrotask. */
  unobservedError: (err: Error, command: string) => void;
}

export class EventLoop extends EventEmitter<EventLoopEvents> {
  private readonly defaults: ConnectionOptions;
  private readonly owned = new Set<Connection>();
  private dirty: Connection[] = [];
  private flushQueued = false;
  private unobserved: Future<unknown>[] = [];
  private unobservedCheck: NodeJS.Immediate | undefined;
  private unobservedCount = 0;
  private closed = false;

  /** `defaults` apply to every connect() of this loop (e.g. commandTimeout, reconnect). */
  constructor(defaults: ConnectionOptions = {}) {
    super();
    resolveOptions({}, defaults); // validate now, not at the first connect
    this.defaults = concealSecrets(defaults); // kept for every connect(): no password in clear
  }

  /** Opens a connection (a URL or options). Commands may be sent at once: they wait in the offline queue. */
  connect(target: string | ConnectionOptions = {}): Connection {
    if (this.closed) throw new ClientStateError('connect(): this EventLoop is closed');
    const conn = new Connection(this, resolveOptions(target, this.defaults));
    this.owned.add(conn);
    conn.whenClosed().then(() => this.owned.delete(conn));
    return conn;
  }

  /** The connections this loop owns that are not closed for good. */
  get connections(): Connection[] {
    return [...this.owned];
  }

  /** Failed futures nobody awaited. */
  get unobservedErrors(): number {
    return this.unobservedCount;
  }

  /**
   * Encodes the command now and queues it on the target's connection; it is written with
   * everything else sent in this tick. Never throws: bad input rejects the returned future.
   */
  sendCommand<T = any>(target: CommandTarget, name: string, ...args: Arg[]): Future<T> {
    return this.dispatch<T>(target, name, args, 0, undefined);
  }

  /** Like sendCommand, with the command as an array and per-command options. */
  send<T = any>(target: CommandTarget, command: readonly [string, ...Arg[]], options?: CommandOptions): Future<T> {
    if (!Array.isArray(command)) {
      const f = new Future<T>('?', false, this);
      f.rejectReply(new TypeError(`send(): the command must be an array like ['GET', 'key'], got ${typeof command}`));
      return f;
    }
    return this.dispatch<T>(target, command[0], command, 1, options);
  }

  private dispatch<T>(target: CommandTarget, name: string, args: ArrayLike<unknown>, from: number, options: CommandOptions | undefined): Future<T> {
    const bad = this.checkTarget(target) ?? checkCommandName(name);
    const returnBuffers = options?.returnBuffers ?? (bad === undefined && target.defaultReturnBuffers);
    const future = new Future<T>(typeof name === 'string' ? name : '?', returnBuffers, this);
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
    target.submit(encoded, future, name, args, from);
    return future;
  }

  private checkTarget(target: CommandTarget): Error | undefined {
    if (this.closed) return new ClientStateError('this EventLoop is closed; create a new one');
    if (target === null || typeof target !== 'object' || typeof target.submit !== 'function') {
      return new TypeError(`target must be a Connection from loop.connect() (or a cluster/shard set), got ${target === null ? 'null' : typeof target}`);
    }
    if (target.loop !== this) return new TypeError('target belongs to another EventLoop');
    return undefined;
  }

  private applyOptions(target: CommandTarget, future: Future<unknown>, options: CommandOptions): Error | undefined {
    for (const key of Object.keys(options)) {
      if (key !== 'timeout' && key !== 'returnBuffers' && key !== 'bigInt') return new TypeError(`unknown command option "${key}" (known: timeout, returnBuffers, bigInt)`);
    }
    const { timeout, returnBuffers, bigInt } = options;
    if (returnBuffers !== undefined && typeof returnBuffers !== 'boolean') return new TypeError('returnBuffers must be a boolean');
    if (bigInt !== undefined && typeof bigInt !== 'boolean') return new TypeError('bigInt must be a boolean');
    if (bigInt !== undefined) future.bigInt = bigInt;
    if (timeout === undefined || timeout === 0) return undefined;
    if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) {
      return new TypeError(`timeout must be a positive number of ms, got ${String(timeout)}`);
    }
    if (timeout > MAX_TIMER_MS) return new TypeError(`timeout must be at most ${MAX_TIMER_MS} ms (0 for no limit), got ${timeout}`);
    future.timer = setTimeout(() => {
      future.rejectReply(new TimeoutError(`${future.command}: no reply within ${timeout}ms; its reply will be read and dropped`));
      target.commandTimedOut?.(future); // resetOnTimeout applies to per-command timeouts too
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

  /** @internal Called by a connection that has bytes to write this tick. */
  scheduleFlush(conn: Connection): void {
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
    for (let i = 0; i < dirty.length; i++) dirty[i]!.flush();
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
    await Promise.all([...this.owned].map((c) => c.close()));
    if (this.unobservedCheck !== undefined) {
      clearImmediate(this.unobservedCheck);
      this.checkUnobserved();
    }
  }

  /** Immediate: destroys every socket; what was not answered rejects. */
  disconnect(): void {
    this.closed = true;
    for (const c of this.owned) c.disconnect();
  }

  [inspect.custom](): string {
    return `EventLoop <${this.owned.size} connection(s)${this.closed ? ', closed' : ''}>`;
  }
}
