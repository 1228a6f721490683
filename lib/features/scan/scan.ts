/**
 * SCAN iterators: loop.scan() walks the keyspace of a connection, or of every master of a
 * cluster or shard set (several masters at once, see `parallel`); hscan/sscan/zscan walk one
 * key's members through any target.
 *
 * Each pass sends the next SCAN as soon as a reply arrives, before the batch is handed to the
 * consumer, so the server works on batch n+1 while the caller handles batch n (one round trip
 * per batch is hidden behind the caller's work instead of added to it). A pass that is stopped
 * (break, return(), another pass failed) waits for the SCAN it already sent, so none is left in
 * flight when the iteration has ended.
 *
 * Redis' guarantee, which these iterators keep: a key present for the whole iteration is
 * returned at least once; a key may be returned more than once (during a rehash, after a
 * reconnect, and when a node's pass restarts on its replacement after a failover).
 */
import type { ReplySink } from '../../base/reply-sink.js';
import type { CommandTarget } from '../../connection/target.js';
import { Connection } from '../../connection/connection.js';
import { kWriteNow } from '../../base/internal.js';
import { encodeCommand, type Encoded } from '../../protocol/encoder.js';
import { ConfigError, isRetryable, ReplyError } from '../../base/errors.js';
import { followsMoves, hasMasters, hostPort, type MasterSet } from '../../routing/targets.js';

export interface ScanOptions {
  /** Glob-style pattern (SCAN ... MATCH). */
  match?: string;
  /**
   * How many elements the server looks at per call (SCAN ... COUNT). Default 1000: Redis'
   * own default of 10 costs a round trip per 10 keys.
   */
  count?: number;
  /** Only keys of this type: string, list, set, zset, hash, stream (SCAN ... TYPE; SCAN only). */
  type?: string;
  /** Yield Buffers instead of strings (binary keys and values). */
  returnBuffers?: boolean;
  /**
   * On a cluster or shard set: how many masters are scanned at once (SCAN only; ignored on a
   * single connection). Default: every master. Each pass runs at most one batch ahead of the
   * consumer, so about 2 x parallel x count keys are held at most; each master still sees one
   * SCAN at a time.
   */
  parallel?: number;
}

/** The options of hscan/sscan/zscan: one key on one server, so no TYPE filter and no fan-out. */
export type KeyScanOptions = Omit<ScanOptions, 'type' | 'parallel'>;

const DEFAULT_COUNT = 1000;
/** How long a node may stay unreachable before the iteration gives up with its error. */
const RETRY_FOR_MS = 30_000;
const RETRY_EVERY_MS = 250;

/** A sink that settles a Promise and is never reported as unobserved. */
class ScanSink implements ReplySink {
  settled = false;
  deadline: number;
  /** Set only when the pass can use the cursor early (see cursorPass). */
  declare onReplyHead?: (cursor: unknown) => void;
  constructor(readonly command: string, readonly returnBuffers: boolean, timeoutMs: number,
    private readonly resolve: (r: unknown) => void, private readonly reject: (e: Error) => void,
    onCursor: ((cursor: unknown) => void) | undefined) {
    this.deadline = timeoutMs > 0 ? Date.now() + timeoutMs : 0;
    // A reply read after its call timed out (the pass has moved on) must not start another call.
    if (onCursor !== undefined) this.onReplyHead = (cursor) => { if (!this.settled) onCursor(cursor); };
  }
  resolveReply(reply: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(reply);
  }
  rejectReply(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
}

type Reply = [cursor: string, items: unknown[]];

function send(target: CommandTarget, args: string[], returnBuffers: boolean, onCursor?: (cursor: unknown) => void): Promise<Reply> {
  const p = new Promise<unknown>((resolve, reject) => {
    const encoded = encodeCommand(args[0]!, args, 1) as Encoded;
    target.submit(encoded, new ScanSink(args[0]!, returnBuffers, target.commandTimeout, resolve, reject, onCursor), args[0]!, args, 1);
  }).then((reply) => {
    if (!Array.isArray(reply) || reply.length !== 2 || !Array.isArray(reply[1])) {
      throw new ReplyError(`ERR ${args[0]} returned an unexpected reply`, args[0]!);
    }
    return [String(reply[0]), reply[1]] as Reply;
  });
  // A reply fetched ahead may never be awaited (the consumer stopped): not an unhandled rejection.
  p.catch(() => {});
  return p;
}

/** Resolves after `ms`, or at once when `stop` is aborted (a stopped pass must not linger). */
function sleep(ms: number, stop?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (stop?.aborted === true) { resolve(); return; }
    const done = () => { clearTimeout(timer); stop?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    stop?.addEventListener('abort', done, { once: true });
  });
}

function checkOptions(what: string, o: ScanOptions | undefined, keyspace: boolean): Required<Pick<ScanOptions, 'count' | 'returnBuffers'>> & ScanOptions {
  if (o !== undefined && (o === null || typeof o !== 'object')) throw new TypeError(`${what}: options must be an object like { match: 'user:*', count: 1000 }`);
  const opts = o ?? {};
  for (const k of Object.keys(opts)) {
    if (k !== 'match' && k !== 'count' && k !== 'returnBuffers' && !(keyspace && (k === 'type' || k === 'parallel'))) {
      throw new ConfigError(`${what}: unknown option "${k}" (known: match, count${keyspace ? ', type, parallel' : ''}, returnBuffers)`);
    }
  }
  if (opts.parallel !== undefined && (!Number.isInteger(opts.parallel) || opts.parallel < 1)) {
    throw new ConfigError(`${what}: parallel must be a positive integer (masters scanned at once; leave it out for every master), got ${String(opts.parallel)}`);
  }
  if (opts.match !== undefined && (typeof opts.match !== 'string' || opts.match === '')) throw new ConfigError(`${what}: match must be a non-empty glob pattern string`);
  if (opts.type !== undefined && (typeof opts.type !== 'string' || opts.type === '')) throw new ConfigError(`${what}: type must be a type name such as 'string' or 'hash'`);
  const count = opts.count ?? DEFAULT_COUNT;
  if (!Number.isInteger(count) || count < 1) throw new ConfigError(`${what}: count must be a positive integer, got ${String(opts.count)}`);
  if (opts.returnBuffers !== undefined && typeof opts.returnBuffers !== 'boolean') throw new ConfigError(`${what}: returnBuffers must be a boolean`);
  return { ...opts, count, returnBuffers: opts.returnBuffers ?? false };
}

function tailArgs(o: ScanOptions & { count: number }): string[] {
  const out: string[] = [];
  if (o.match !== undefined) out.push('MATCH', o.match);
  out.push('COUNT', String(o.count));
  if (o.type !== undefined) out.push('TYPE', o.type);
  return out;
}

/**
 * The async iterable scan() and friends return: `for await (const x of it)` yields items one
 * by one; `it.batches()` yields each server reply's items as an array (cheaper per item).
 */
export class ScanIterator<T> implements AsyncIterableIterator<T> {
  private buf: unknown[] = [];
  private i = 0;
  private readonly source: AsyncGenerator<unknown[], void, undefined>;
  private readonly map: ((raw: unknown[], i: number) => T) | undefined;
  private readonly step: number;
  private started = false;

  /** @internal */
  constructor(source: AsyncGenerator<unknown[], void, undefined>, step = 1, map?: (raw: unknown[], i: number) => T) {
    this.source = source;
    this.step = step;
    this.map = map;
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    this.started = true;
    while (this.i >= this.buf.length) {
      const r = await this.source.next();
      if (r.done === true) return { done: true, value: undefined };
      this.buf = r.value;
      this.i = 0;
    }
    const i = this.i;
    this.i += this.step;
    return { done: false, value: this.map === undefined ? this.buf[i] as T : this.map(this.buf, i) };
  }

  async return(): Promise<IteratorResult<T, undefined>> {
    // Ended means ended: next() must not hand out what was left of the last batch.
    this.buf = [];
    this.i = 0;
    await this.source.return();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Each server reply's items as one array, as it arrives (instead of item by item). */
  async *batches(): AsyncGenerator<T[], void, undefined> {
    if (this.started) throw new TypeError('batches(): this iterator was already read item by item; make a new one');
    this.started = true;
    for await (const raw of this.source) {
      if (this.map === undefined) { yield raw as T[]; continue; }
      const out: T[] = new Array(raw.length / this.step);
      for (let i = 0, j = 0; i < raw.length; i += this.step, j++) out[j] = this.map(raw, i);
      yield out;
    }
  }
}

/**
 * One pass of a cursor over one target, the next call pipelined ahead of the consumer.
 * `afterFailure` is asked after a retryable failure: 'resume' keeps the cursor (same server),
 * 'restart' starts again at 0 (another server), or it throws to give up. Once `stop` is
 * aborted the pass sends nothing more and ends.
 *
 * On a connection, the next call leaves as soon as the reply's cursor has arrived, before the
 * reply's items are decoded, and is written at once: the server works on batch n+1 while this
 * process decodes batch n (SCAN is bound by the server; this hides the decoding behind it).
 */
async function* cursorPass(
  target: () => CommandTarget,
  head: string[], tail: string[], returnBuffers: boolean,
  afterFailure: (err: unknown, since: number) => Promise<'resume' | 'restart'>,
  stop?: AbortSignal,
): AsyncGenerator<unknown[], void, undefined> {
  let cursor = '0';
  let failingSince = 0;
  /** The call sent from the head of the reply in flight, and its cursor. */
  let early: { cursor: string; reply: Promise<Reply> } | undefined;
  const call = (c: string): Promise<Reply> => {
    const t = target();
    const args = [...head, c, ...tail];
    if (!(t instanceof Connection)) return send(t, args, returnBuffers);
    return send(t, args, returnBuffers, (first) => {
      const nextCursor = Buffer.isBuffer(first) ? first.toString('latin1') : String(first);
      if (early !== undefined || nextCursor === '0' || stop?.aborted === true) return;
      early = { cursor: nextCursor, reply: call(nextCursor) };
      t[kWriteNow]();
    });
  };
  let next: Promise<Reply> | undefined = call(cursor);
  try {
    // `next` is the SCAN in flight; none once the cursor is back at 0.
    while (next !== undefined) {
      let reply: Reply;
      try {
        reply = await next;
      } catch (err) {
        next = undefined;
        // A reply cut after its cursor came: the call sent early goes unused (its keys come again).
        if (early !== undefined) { await early.reply.catch(() => {}); early = undefined; }
        if (!isRetryable(err)) throw err;
        if (failingSince === 0) failingSince = Date.now();
        const how = await afterFailure(err, failingSince);
        if (stop?.aborted === true) return;
        if (how === 'restart') cursor = '0';
        next = call(cursor);
        continue;
      }
      next = undefined;
      failingSince = 0;
      cursor = reply[0];
      const sentEarly = early;
      early = undefined;
      if (sentEarly !== undefined && sentEarly.cursor === cursor) next = sentEarly.reply;
      else if (sentEarly !== undefined) await sentEarly.reply.catch(() => {}); // a head that was not the cursor: drop that call
      if (stop?.aborted === true) return;
      if (next === undefined && cursor !== '0') next = call(cursor);
      if (reply[1].length !== 0) yield reply[1];
    }
  } finally {
    // Stopped while a SCAN was in flight (break, return(), another pass failed): wait for its
    // reply (or its failure), so the iteration never ends with a SCAN still pending.
    if (next !== undefined) await next.catch(() => {});
    if (early !== undefined) await early.reply.catch(() => {});
  }
}

async function waitOrGiveUp(err: unknown, since: number, target: CommandTarget, stop?: AbortSignal): Promise<void> {
  // After loop.close() nothing comes back: end now instead of retrying for RETRY_FOR_MS.
  if ((target.loop as { isClosed?: boolean } | null)?.isClosed === true) throw err;
  if (Date.now() - since > RETRY_FOR_MS) throw err;
  await sleep(RETRY_EVERY_MS, stop);
}

/** SCAN over the whole keyspace of a connection, or of every master of a cluster or shard set. */
export function scan(target: CommandTarget, options?: ScanOptions): ScanIterator<string | Buffer> {
  const o = checkOptions('scan()', options, true);
  const tail = tailArgs(o);
  if (!hasMasters(target)) {
    // One server: a reconnect keeps the cursor valid (it is the same server's keyspace).
    return new ScanIterator(cursorPass(() => target, ['SCAN'], tail, o.returnBuffers, async (err, since) => {
      if ((target as Partial<Connection>).state === 'closed') throw err;
      await waitOrGiveUp(err, since, target);
      return 'resume';
    }));
  }
  return new ScanIterator(fanOut(target, tail, o.returnBuffers, o.parallel));
}

type Pass = AsyncGenerator<unknown[], void, undefined>;
type Settled = { pass: Pass; ok: true; result: IteratorResult<unknown[], void> } | { pass: Pass; ok: false; error: unknown };

/**
 * Runs the passes `parallel` at a time (the next one starts when one ends) and yields their
 * batches in the order they arrive. A running pass has one next() outstanding, asked again only
 * once its previous batch was taken, so it is at most one batch ahead of the consumer: that batch
 * waiting here, and its next SCAN in flight. The first pass to fail ends the iteration with its
 * error; ending for any reason aborts `stop` and waits until every pass has ended.
 */
async function* interleave(passes: ReadonlyArray<() => Pass>, parallel: number, stop: AbortController): AsyncGenerator<unknown[], void, undefined> {
  const started: Pass[] = [];
  const waiting = new Map<Pass, Promise<Settled>>();
  const pull = (pass: Pass) => {
    // Never rejects: a failure is a value here, so no promise is left to reject unobserved.
    waiting.set(pass, pass.next().then((result) => ({ pass, ok: true, result }), (error: unknown) => ({ pass, ok: false, error })));
  };
  const startNext = () => {
    if (started.length === passes.length) return;
    const pass = passes[started.length]!();
    started.push(pass);
    pull(pass);
  };
  try {
    while (started.length < Math.min(parallel, passes.length)) startNext();
    while (waiting.size > 0) {
      const settled = await Promise.race(waiting.values());
      // Deleted and set again on the next pull, so a pass whose batch was just taken goes behind
      // the others that are ready: no master is starved by a faster one.
      waiting.delete(settled.pass);
      if (!settled.ok) throw settled.error;
      if (settled.result.done === true) { startNext(); continue; }
      yield settled.result.value;
      pull(settled.pass);
    }
  } finally {
    stop.abort();
    // A pass suspended at its yield ends at once (after its SCAN in flight); one with a next()
    // outstanding ends when that settles, sending nothing more.
    await Promise.all(started.map((pass) => pass.return()));
  }
}

/**
 * Every master, `parallel` at a time (default: all at once). A master that fails for good
 * mid-pass is replaced by the node that owns its first slot in the next map, where its pass
 * restarts at cursor 0 (so its keys already seen may be seen again).
 */
async function* fanOut(target: MasterSet, tail: string[], returnBuffers: boolean, parallel: number | undefined): AsyncGenerator<unknown[], void, undefined> {
  await target.whenReady();
  // A cluster's map (or a sentinel target's, its master serving every slot) says which node took
  // a failed master's slots; a shard set's never changes.
  const cluster = followsMoves(target) ? target : undefined;
  const stop = new AbortController();
  const passes = target.masterConnections.map((first) => {
    // A slot of this master, to find its replacement after a failover (clusters only). Taken
    // now, from the map the iteration starts with, for passes that start later too.
    const slot = cluster?.nodes.find((n) => n.role === 'master' && n.address === hostPort(first))?.slots[0]?.[0];
    return () => {
      let conn = first;
      return cursorPass(() => conn, ['SCAN'], tail, returnBuffers, async (err, since) => {
        await waitOrGiveUp(err, since, target, stop.signal);
        if (slot === undefined || cluster === undefined) {
          if (conn.state === 'closed') throw err;
          return 'resume';
        }
        cluster.refresh();
        await sleep(RETRY_EVERY_MS, stop.signal); // let the refresh land
        const owner = cluster.nodes.find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b));
        const next = owner === undefined ? undefined : target.masterConnections.find((c) => hostPort(c) === owner.address);
        if (next === undefined || next === conn) return 'resume';
        conn = next;
        return 'restart';
      }, stop.signal);
    };
  });
  yield* interleave(passes, parallel ?? passes.length, stop);
}

function keyScan<T>(what: string, target: CommandTarget, key: string | Buffer, options: KeyScanOptions | undefined, step: number, map?: (raw: unknown[], i: number) => T): ScanIterator<T> {
  if (typeof key !== 'string' && !Buffer.isBuffer(key)) throw new TypeError(`${what}: key must be a string or a Buffer, got ${key === null ? 'null' : typeof key}`);
  const o = checkOptions(`${what}()`, options, false);
  // Through the target, so a cluster routes it by key (and follows MOVED). After a connection
  // failure the pass restarts at 0: the key may now live on another server.
  const head = [what.toUpperCase(), key as string];
  return new ScanIterator(cursorPass(() => target, head, tailArgs(o), o.returnBuffers, async (err, since) => {
    if ((target as Partial<Connection>).state === 'closed') throw err;
    await waitOrGiveUp(err, since, target);
    return 'restart';
  }), step, map);
}

/** HSCAN: [field, value] pairs of a hash. */
export function hscan(target: CommandTarget, key: string | Buffer, options?: KeyScanOptions): ScanIterator<[string | Buffer, string | Buffer]> {
  return keyScan('hscan', target, key, options, 2, (raw, i) => [raw[i] as string, raw[i + 1] as string]);
}

/** SSCAN: members of a set. */
export function sscan(target: CommandTarget, key: string | Buffer, options?: KeyScanOptions): ScanIterator<string | Buffer> {
  return keyScan('sscan', target, key, options, 1);
}

function toScore(s: unknown): number {
  const t = String(s);
  return t === 'inf' ? Infinity : t === '-inf' ? -Infinity : Number(t);
}

/** ZSCAN: [member, score] pairs of a sorted set (scores as numbers). */
export function zscan(target: CommandTarget, key: string | Buffer, options?: KeyScanOptions): ScanIterator<[string | Buffer, number]> {
  return keyScan('zscan', target, key, options, 2, (raw, i) => [raw[i] as string, toScore(raw[i + 1])]);
}
