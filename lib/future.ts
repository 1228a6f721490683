/**
 * Future: the handle sendCommand returns. It is also the reply sink the connection's FIFO
 * holds, so one command costs one object. No Promise exists until somebody awaits it.
 */
import pDefer, { type DeferredPromise } from 'p-defer';

/**
 * What a connection's pending-reply FIFO holds. Futures are sinks; routing layers and mass
 * insertion supply their own (to see a MOVED before the user does, or to count replies
 * without allocating anything per command).
 */
export interface ReplySink {
  /** The command's name, for error messages. */
  readonly command: string;
  /** Whether this reply's strings should be decoded as Buffers. */
  readonly returnBuffers: boolean;
  /**
   * Whether this reply's integers should be decoded as bigints (exact beyond 2^53); when absent
   * the connection's `bigInt` option decides.
   */
  readonly bigInt?: boolean | undefined;
  /** Absolute time (ms since epoch) after which the command times out; 0 for none. */
  deadline: number;
  /** True once the sink has an outcome; a later reply for it is read and dropped. */
  readonly settled: boolean;
  resolveReply(reply: unknown): void;
  /** `err` is a ReplyError for a server error, or a client-side failure. */
  rejectReply(err: Error): void;
}

/** Where futures report rejections nobody was listening for (the EventLoop). */
export interface UnobservedErrorSink {
  reportUnobserved(future: Future<unknown>): void;
}

/** Something waiting on a future without a Promise of its own (Future.all). */
interface FutureWaiter {
  settled(future: Future<unknown>): void;
}

const PENDING = 0;
const RESOLVED = 1;
const REJECTED = 2;

export class Future<T = unknown> implements PromiseLike<T>, ReplySink {
  readonly command: string;
  readonly returnBuffers: boolean;
  deadline = 0;
  /** Per-command timer, only for futures with their own `timeout` option. */
  timer: NodeJS.Timeout | undefined = undefined;
  /** Set only for a per-command `bigInt` option; otherwise the connection decides. */
  bigInt: boolean | undefined = undefined;
  private state = PENDING;
  private value_: unknown = undefined;
  private deferred: DeferredPromise<T> | undefined = undefined;
  private waiter: FutureWaiter | undefined = undefined;
  private readonly reporter: UnobservedErrorSink | null;

  constructor(command: string, returnBuffers: boolean, reporter: UnobservedErrorSink | null) {
    this.command = command;
    this.returnBuffers = returnBuffers;
    this.reporter = reporter;
  }

  get settled(): boolean {
    return this.state !== PENDING;
  }

  /** True once somebody called then/catch/finally/promise(). */
  get observed(): boolean {
    return this.deferred !== undefined || this.waiter !== undefined;
  }

  /** The reply, once resolved (undefined before, or if it was rejected). */
  get value(): T | undefined {
    return this.state === RESOLVED ? (this.value_ as T) : undefined;
  }

  /** The rejection reason, if the future was rejected (for unobserved-error reports). */
  get error(): Error | undefined {
    return this.state === REJECTED ? (this.value_ as Error) : undefined;
  }

  resolveReply(reply: unknown): void {
    if (this.state !== PENDING) return;
    this.state = RESOLVED;
    this.value_ = reply;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.deferred !== undefined) this.deferred.resolve(reply as T);
    if (this.waiter !== undefined) this.waiter.settled(this);
  }

  rejectReply(err: Error): void {
    if (this.state !== PENDING) return;
    this.state = REJECTED;
    this.value_ = err;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.deferred !== undefined) this.deferred.reject(err);
    if (this.waiter !== undefined) this.waiter.settled(this);
    else if (this.deferred === undefined && this.reporter !== null) this.reporter.reportUnobserved(this);
  }

  /** The Promise behind this future, made on first use. */
  promise(): Promise<T> {
    let d = this.deferred;
    if (d === undefined) {
      d = this.deferred = pDefer<T>();
      if (this.state === RESOLVED) d.resolve(this.value_ as T);
      else if (this.state === REJECTED) d.reject(this.value_);
    }
    return d.promise;
  }

  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.promise().then(onFulfilled, onRejected);
  }

  catch<R = never>(onRejected?: ((reason: any) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.promise().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.promise().finally(onFinally);
  }

  /**
   * Like Promise.all for futures, with one Promise for the whole batch instead of several per
   * future: resolves to the replies in order, or rejects with the first failure.
   */
  static all<T>(futures: readonly Future<T>[]): Promise<T[]> {
    const group = new FutureGroup<T>(futures);
    for (const f of futures) {
      if (f.state !== PENDING) {
        f.waiter ??= group; // observed: a failure it already had is not reported as unobserved
        group.settled(f);
      } else if (f.waiter === undefined) f.waiter = group;
      else f.promise().then(() => group.settled(f), () => group.settled(f)); // in two groups at once
    }
    return group.deferred.promise;
  }

  get [Symbol.toStringTag](): string {
    return 'Future';
  }
}


class FutureGroup<T> implements FutureWaiter {
  readonly deferred = pDefer<T[]>();
  private remaining: number;
  private done = false;

  constructor(private readonly futures: readonly Future<T>[]) {
    this.remaining = futures.length;
    if (futures.length === 0) this.deferred.resolve([]);
  }

  settled(future: Future<unknown>): void {
    if (this.done) return;
    const err = future.error;
    if (err !== undefined) {
      this.done = true;
      this.deferred.reject(err);
    } else if (--this.remaining === 0) {
      this.done = true;
      const values = new Array<T>(this.futures.length);
      for (let i = 0; i < values.length; i++) values[i] = this.futures[i]!.value as T;
      this.deferred.resolve(values);
    }
  }
}
