/**
 * Future: the handle sendCommand returns. It is a native Promise (so `await f`, Promise.all and
 * every promise utility take their fastest path, with no extra job or Promise per future), and
 * it is also the reply sink the connection's FIFO holds, so one command costs one object.
 *
 * Reading `constructor` is how every native consumer starts (await and Promise.resolve check it,
 * then/catch/finally look up the species through it), so a getter there tells us that somebody
 * is listening. Until then the native side is left alone: a reply only sets two fields, and a
 * failure nobody listens to never rejects a Promise, so it can never be an unhandled rejection;
 * it is reported on the loop instead. Future.all listens without the native side at all.
 */

import type { ReplySink } from '../base/reply-sink.js';
import type { CommandMessage } from '../base/channels.js';

export type { ReplySink };

/** Where futures report rejections nobody was listening for (the EventLoop). */
export interface UnobservedErrorSink {
  reportUnobserved(future: Future<unknown>): void;
}

/** Something waiting on a future without a Promise of its own (Future.all). */
interface FutureWaiter {
  settled(future: Future<unknown>): void;
}

/**
 * @internal A group waiting on many items at once with no Promise or closure per item (Future.all,
 * loop.batch): a future tells it when it settles (its value or error is then on the future);
 * anything else, or a future already in another group, is awaited natively and reported by index.
 */
export interface GroupWaiter extends FutureWaiter {
  resolveAt(index: number, value: unknown): void;
  rejectAt(index: number, reason: unknown): void;
}

// flags: the state in the low two bits, then what the future was told and who listens.
const PENDING = 0;
const RESOLVED = 1;
const REJECTED = 2;
const STATE = 3;
const RETURN_BUFFERS = 4;
/** `constructor` was read: a native reaction may exist, so the Promise side must settle. */
const NATIVE = 8;
/** A Future.all batch took it. */
const GROUPED = 16;

// The executor every Future and batch shares: no closure per Promise. The Promise constructor
// calls it synchronously, so the functions are picked up right after.
let capturedResolve: ((value: unknown) => void) | undefined;
let capturedReject: ((reason: unknown) => void) | undefined;
function capture(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/**
 * Rejects a Future's native side through its resolve function (only that one is kept: a failure
 * costs one more microtask, a command one function less).
 */
class Rejection {
  constructor(private readonly reason: Error) {}
  then(_resolve: unknown, reject: (reason: unknown) => void): void {
    reject(this.reason);
  }
}

const nativeThen = Promise.prototype.then;
const ignore = (): void => {};

export class Future<T = unknown> extends Promise<T> implements ReplySink {
  readonly command: string;
  /** Absolute time (ms since epoch) of this command's timeout; 0 (the prototype's) for none. */
  declare deadline: number;
  /** Per-command timer, only for futures with their own `timeout` option. */
  declare timer: NodeJS.Timeout | undefined;
  /** Set only for a per-command `bigInt` option; otherwise the connection decides. */
  declare bigInt: boolean | undefined;
  /** Set only for a per-command `resp3` option; otherwise the connection decides. */
  declare resp3: boolean | undefined;
  /** @internal The `redloop:command` context of a traced command (a TracedFuture); undefined (the prototype's) otherwise. */
  declare trace: CommandMessage | undefined;
  private flags: number;
  /** Pending: the FutureWaiter or the reporter, if any. Settled: the reply or the error. */
  private slot: unknown;
  private readonly settleNative: (value: unknown) => void;

  /** @internal Futures are made by sendCommand() and its kin, with the loop as `reporter`. */
  constructor(command: string, returnBuffers: boolean, reporter: UnobservedErrorSink | null) {
    super(capture as never);
    this.settleNative = capturedResolve!;
    capturedResolve = capturedReject = undefined;
    this.command = command;
    this.flags = returnBuffers ? RETURN_BUFFERS : 0;
    this.slot = reporter;
  }

  get returnBuffers(): boolean {
    return (this.flags & RETURN_BUFFERS) !== 0;
  }

  get settled(): boolean {
    return (this.flags & STATE) !== PENDING;
  }

  /** True once somebody awaited it, called then/catch/finally, or passed it to Future.all. */
  get observed(): boolean {
    return (this.flags & (NATIVE | GROUPED)) !== 0;
  }

  /** The reply, once resolved (undefined before, or if it was rejected). */
  get value(): T | undefined {
    return (this.flags & STATE) === RESOLVED ? (this.slot as T) : undefined;
  }

  /** The rejection reason, if the future was rejected. */
  get error(): Error | undefined {
    return (this.flags & STATE) === REJECTED ? (this.slot as Error) : undefined;
  }

  resolveReply(reply: unknown): void {
    const flags = this.flags;
    if ((flags & STATE) !== PENDING) return;
    const waiter = this.slot;
    this.flags = flags | RESOLVED;
    this.slot = reply;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if ((flags & NATIVE) !== 0) this.settleNative(reply);
    if ((flags & GROUPED) !== 0) (waiter as FutureWaiter).settled(this);
  }

  rejectReply(err: Error): void {
    const flags = this.flags;
    if ((flags & STATE) !== PENDING) return;
    const waiter = this.slot;
    this.flags = flags | REJECTED;
    this.slot = err;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if ((flags & NATIVE) !== 0) this.rejectNative(err);
    if ((flags & GROUPED) !== 0) (waiter as FutureWaiter).settled(this);
    else if ((flags & NATIVE) === 0 && waiter !== null && waiter !== undefined) (waiter as UnobservedErrorSink).reportUnobserved(this);
  }

  private rejectNative(err: Error): void {
    this.settleNative(new Rejection(err));
    // Whoever read `constructor` attaches its handler now, but a bare Promise.resolve(f) or a
    // library peeking at the constructor attaches none: the future's own failure must never be
    // an unhandled rejection. (A chain the caller builds on it still reports its own.)
    nativeThen.call(this, undefined, ignore);
  }

  /** Called when `constructor` is read: from now on the Promise side follows the future. */
  private listen(): void {
    const flags = this.flags;
    if ((flags & NATIVE) !== 0) return;
    this.flags = flags | NATIVE;
    const state = flags & STATE;
    if (state === RESOLVED) this.settleNative(this.slot);
    else if (state === REJECTED) this.rejectNative(this.slot as Error);
  }

  /**
   * Like Promise.all (same types: a tuple keeps each position's type), with one Promise for the
   * whole batch instead of several per future: resolves to the replies in order, or rejects with
   * the first failure. Values that are not futures are awaited as Promise.all would.
   */
  static override all<A extends readonly unknown[] | []>(values: A): Promise<{ -readonly [P in keyof A]: Awaited<A[P]> }>;
  static override all<V>(values: Iterable<V | PromiseLike<V>>): Promise<Awaited<V>[]>;
  static override all(values: Iterable<unknown>): Promise<unknown[]> {
    const items = Array.isArray(values) ? values as readonly unknown[] : Array.from(values);
    const group = new FutureGroup(items);
    Future.watch(items, group);
    return group.promise;
  }

  /**
   * @internal Makes `group` the listener of every item (see GroupWaiter). A future it takes counts
   * as observed: its failure is the group's to report, never an unobserved error.
   */
  static watch(items: readonly unknown[], group: GroupWaiter): void {
    for (let i = 0; i < items.length; i++) {
      const f = items[i];
      if (!(f instanceof Future)) {
        Promise.resolve(f).then((v) => group.resolveAt(i, v), (e: unknown) => group.rejectAt(i, e));
        continue;
      }
      const flags = f.flags;
      if ((flags & STATE) !== PENDING) {
        f.flags = flags | GROUPED; // observed: a failure it already had is not reported as unobserved
        group.settled(f);
      } else if ((flags & GROUPED) === 0) {
        f.flags = flags | GROUPED;
        f.slot = group;
      } else {
        // In another batch already: wait for it the native way.
        f.then((v) => group.resolveAt(i, v), (e: unknown) => group.rejectAt(i, e));
      }
    }
  }

  override get [Symbol.toStringTag](): string {
    return 'Future';
  }
}

// `await`, Promise.resolve and then() all read `constructor`; answering Promise makes them treat a
// future exactly as a native Promise (no thenable job, no extra Promise), and tells us to listen.
Object.defineProperty(Future.prototype, 'constructor', {
  configurable: true,
  enumerable: false,
  get(this: Future<unknown>) {
    (this as unknown as { listen(): void }).listen();
    return Promise;
  },
});
Object.defineProperty(Future, Symbol.species, { configurable: true, get: () => Promise });
// The other statics construct through `this`; a Future is only ever made by the loop.
for (const name of ['resolve', 'reject', 'race', 'allSettled', 'any', 'withResolvers'] as const) {
  const fn = (Promise as unknown as Record<string, unknown>)[name];
  if (typeof fn === 'function') Object.defineProperty(Future, name, { configurable: true, writable: true, value: fn.bind(Promise) });
}
Object.defineProperty(Future.prototype, 'deadline', { configurable: true, writable: true, value: 0 });
Object.defineProperty(Future.prototype, 'timer', { configurable: true, writable: true, value: undefined });
Object.defineProperty(Future.prototype, 'bigInt', { configurable: true, writable: true, value: undefined });
Object.defineProperty(Future.prototype, 'resp3', { configurable: true, writable: true, value: undefined });
Object.defineProperty(Future.prototype, 'trace', { configurable: true, writable: true, value: undefined });

/** One Future.all batch: counts settled futures and makes one Promise. */
class FutureGroup implements GroupWaiter {
  readonly promise: Promise<unknown[]>;
  private readonly resolve: (values: unknown[]) => void;
  private readonly reject: (reason: unknown) => void;
  private readonly values: unknown[];
  private remaining: number;
  private done = false;

  constructor(private readonly items: readonly unknown[]) {
    this.promise = new Promise<unknown[]>(capture as never);
    this.resolve = capturedResolve!;
    this.reject = capturedReject!;
    capturedResolve = capturedReject = undefined;
    this.remaining = items.length;
    this.values = new Array<unknown>(items.length);
    if (items.length === 0) this.finish();
  }

  settled(future: Future<unknown>): void {
    if (this.done) return;
    const err = future.error;
    if (err !== undefined) this.fail(err);
    else if (--this.remaining === 0) this.finish();
  }

  resolveAt(index: number, value: unknown): void {
    if (this.done) return;
    this.values[index] = value;
    if (--this.remaining === 0) this.finish();
  }

  rejectAt(_index: number, err: unknown): void {
    this.fail(err);
  }

  private fail(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.reject(err);
  }

  private finish(): void {
    this.done = true;
    const { items, values } = this;
    for (let i = 0; i < values.length; i++) {
      const f = items[i];
      if (f instanceof Future) values[i] = f.value;
    }
    this.resolve(values);
  }
}
