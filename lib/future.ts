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

const PENDING = 0;
const RESOLVED = 1;
const REJECTED = 2;

export class Future<T = unknown> implements PromiseLike<T>, ReplySink {
  readonly command: string;
  readonly returnBuffers: boolean;
  deadline = 0;
  /** Per-command timer, only for futures with their own `timeout` option. */
  timer: NodeJS.Timeout | undefined = undefined;
  private state = PENDING;
  private value: unknown = undefined;
  private deferred: DeferredPromise<T> | undefined = undefined;
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
    return this.deferred !== undefined;
  }

  /** The rejection reason, if the future was rejected (for unobserved-error reports). */
  get error(): Error | undefined {
    return this.state === REJECTED ? (this.value as Error) : undefined;
  }

  resolveReply(reply: unknown): void {
    if (this.state !== PENDING) return;
    this.state = RESOLVED;
    this.value = reply;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.deferred !== undefined) this.deferred.resolve(reply as T);
  }

  rejectReply(err: Error): void {
    if (this.state !== PENDING) return;
    this.state = REJECTED;
    this.value = err;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.deferred !== undefined) this.deferred.reject(err);
    else if (this.reporter !== null) this.reporter.reportUnobserved(this);
  }

  /** The Promise behind this future, made on first use. */
  promise(): Promise<T> {
    let d = this.deferred;
    if (d === undefined) {
      d = this.deferred = pDefer<T>();
      if (this.state === RESOLVED) d.resolve(this.value as T);
      else if (this.state === REJECTED) d.reject(this.value);
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

  get [Symbol.toStringTag](): string {
    return 'Future';
  }
}

