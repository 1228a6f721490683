/**
 * ConnectionCache: the cache as seen from one connection. It owns what is per connection (is
 * tracking on for this socket, the invalidation pushes it receives) and uses the NodeCache its
 * server's connections share. It is also the cache front of a Connection target: hits, cached
 * reads, and own writes dropping their keys before they are written.
 *
 * Tracking is switched on lazily, in front of the first cached read on each socket (the
 * `CLIENT TRACKING ON ...` goes in the same write). A socket that closes takes the cache with it:
 * invalidations may have been missed, so the node's cache is cleared, and the next socket
 * starts untracked.
 */
import type { ReplySink } from '../base/reply-sink.js';
import type { ResolvedCacheOptions } from '../base/cache-options.js';
import { ClientStateError } from '../base/errors.js';
import { encodeCommand, type Encoded } from '../protocol/encoder.js';
import type { Connection } from '../connection/connection.js';
import { MISS, argLookup, canonicalKey, lookupKey, modeOf, type NodeCache, type PendingRead } from './store.js';
import { FLAG_WRITE, cacheableKeys, uncacheableReason, writeEffect, type CommandClassifier, type CommandInfoLike } from './classify.js';
import { CachedRequest, MgetAssembly, type Fallback } from './request.js';

/** Where a cache front reports what cannot be said through a future (tracking refused). */
export interface CacheEvents {
  emit(event: string, ...args: unknown[]): boolean;
}

/** Per-key MGET entries live under this name, apart from whole replies of `MGET k`. */
export const MGET_KEY = '\0MGET';

/** What a hit hands back: the reply, and where the loop may keep a settled Future of it (an entry's). */
export interface Hit {
  readonly value: unknown;
  handle: unknown;
}

export function isMget(name: string): boolean {
  return name.length === 4 && (name === 'MGET' || name === 'mget' || name.toUpperCase() === 'MGET');
}

export class ConnectionCache {
  /** Commands parked behind a cached read waiting for the command table (cached-send.ts). */
  parked: Array<(err: Error | undefined) => void> | undefined = undefined;
  /** Tracking was requested on the current socket (reset when it closes). */
  private trackingSent = false;
  /** Bumped when a socket closes; a read kept only if tracking was confirmed on its socket. */
  private epoch = 0;
  private confirmedEpoch = -1;
  private reportedRefusal = false;
  readonly defaultBigInt: boolean;
  readonly defaultResp3: boolean;
  readonly defaultMode: number;
  /** The push listener is registered (once per connection; it survives reconnects). */
  private listening = false;

  constructor(
    readonly conn: Connection,
    readonly node: NodeCache,
    /** undefined: this connection was opened without `cache`; it only drops keys it writes. */
    readonly config: ResolvedCacheOptions | undefined,
    private readonly table: () => CommandClassifier | undefined,
    private readonly events: CacheEvents,
    /** Registers the invalidation push handler on the connection; false when it cannot have one (RESP2). */
    private readonly listen: (conn: Connection, onPush: (frame: unknown) => void) => boolean,
    private readonly whenTable: (via: Connection, resume: (err: Error | undefined) => void) => void,
  ) {
    this.waiting = table() === undefined;
    const o = conn.resolvedOptions;
    this.defaultBigInt = o.bigInt;
    this.defaultResp3 = o.resp3;
    this.defaultMode = modeOf(o.returnBuffers, o.bigInt, o.resp3);
  }

  /** The command table, once known (read on the write path: a field, not a call). */
  private known: CommandClassifier | undefined = undefined;
  /** Cached reads wait until the command table is known (then never again: a field read per hit). */
  waiting = true;

  park(resume: (err: Error | undefined) => void): void {
    this.whenTable(this.conn, (err) => {
      if (this.table() !== undefined) this.waiting = false;
      resume(err);
    });
  }

  get auto(): boolean {
    return this.config?.auto === true;
  }

  get caching(): boolean {
    return this.config !== undefined && this.node.enabled;
  }

  // ---------------------------------------------------------------- hits

  /** The cached reply of this read (an entry, or an MGET's values), or undefined. */
  hit(name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number): Hit | undefined {
    if (name.length === 4 && isMget(name)) return this.mgetHit(args, from, mode, maxAge);
    const lookup = args.length - from === 1 && typeof args[from] === 'string' ? args[from] as string : lookupKey(args, from);
    if (lookup === undefined) return undefined;
    return this.node.entry(mode, name, lookup, maxAge);
  }

  /** An MGET whose keys are all cached: a fresh array of their values; otherwise undefined (a partial hit is read()'s). */
  private mgetHit(args: ArrayLike<unknown>, from: number, mode: number, maxAge: number): Hit | undefined {
    const n = args.length - from;
    if (n < 1) return undefined;
    const out = new Array<unknown>(n);
    const node = this.node;
    const hitsBefore = node.counters.hits;
    for (let i = 0; i < n; i++) {
      const lookup = argLookup(args[from + i]);
      const v = lookup === undefined ? MISS : node.get(mode, MGET_KEY, lookup, maxAge);
      if (v === MISS) {
        node.counters.hits = hitsBefore;
        return undefined;
      }
      out[i] = v;
    }
    return { value: out, handle: undefined };
  }

  // ---------------------------------------------------------------- own writes

  /** Before an uncached command is written: the keys it may write leave the cache. */
  beforeSend(name: string, args: ArrayLike<unknown>, from: number): void {
    // Nothing cached and no read in flight: no key to drop (a write costs one field read).
    if (this.node.indexedKeys === 0) return;
    const table = this.known ?? (this.known = this.table());
    if (table === undefined) return; // nothing is cached before the command table is known
    const info = table.lookup(name, args, from);
    if (info === undefined || writeEffect(info) === 'none') return;
    dropWrittenKeys(this.node, table, info, args, from);
  }

  // ---------------------------------------------------------------- reads

  /**
   * Sends a read through the cache: joins a read of the same in flight, or sends one tracked.
   * For a command that cannot be cached: with `explicit` the sink rejects with a TypeError
   * (nothing is written) and true is returned; otherwise false, and the caller sends it as usual.
   */
  read(encoded: Encoded, sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number, mode: number, maxAge: number, explicit: boolean): boolean {
    const table = this.table()!;
    const info = table.lookup(name, args, from);
    const keyIdx = cacheableKeys(table, info, this.refusal(info, name), args, from);
    if (typeof keyIdx === 'string') {
      if (!explicit) return false;
      sink.rejectReply(new TypeError(keyIdx));
      return true;
    }
    const outside = this.outsidePrefixes(args, keyIdx);
    if (outside !== undefined) {
      if (!explicit) return false;
      sink.rejectReply(new TypeError(`${name.toUpperCase()} of ${outside} cannot be cached: the key is under none of cache.prefixes (broadcast mode tracks only those)`));
      return true;
    }
    if (!this.ensureTracking()) {
      this.conn.submit(encoded, sink); // tracking refused: uncached, never wrong
      return true;
    }
    if (isMget(name)) {
      this.mgetRead(sink, name, args, from, keyIdx, mode, maxAge, -1, undefined);
      return true;
    }
    const lookup = lookupKey(args, from)!;
    const shared = this.node.pending(mode, name, lookup);
    if (shared !== undefined && maxAge === 0) {
      shared.waiters.push(sink);
      return true;
    }
    const keys = keyIdx.map((k) => canonicalKey(args[k]));
    const p = this.node.begin(mode, name, lookup, keys, this.ttlFor(maxAge), -1);
    p.waiters.push(sink);
    this.sendRequest([p], false, name, encoded, keyIdx.map((k) => args[k]), sink, [], undefined);
    return true;
  }

  /** How long an entry read now may live: this connection's ttl, or the caller's bound if shorter (0: no limit). */
  ttlFor(maxAge: number): number {
    const ttl = this.config?.ttl ?? 0;
    return ttl === 0 ? maxAge : maxAge === 0 ? ttl : Math.min(ttl, maxAge);
  }

  /** Why `{ cache }` cannot apply on this connection, if it cannot. */
  private refusal(info: CommandInfoLike | undefined, name: string): string | undefined {
    if (this.config === undefined) return `${String(name).toUpperCase()}: this connection was opened without the cache option; pass cache: { ... } to connect()`;
    return uncacheableReason(info, name);
  }

  /** The first key (as text) outside the broadcast prefixes, if any. */
  outsidePrefixes(args: ArrayLike<unknown>, keyIdx: readonly number[]): string | undefined {
    const prefixes = this.config?.prefixes;
    if (prefixes === undefined) return undefined;
    for (const k of keyIdx) {
      const key = canonicalKey(args[k]);
      if (!prefixes.some((p) => key.startsWith(p))) return key;
    }
    return undefined;
  }

  /**
   * An MGET, each key its own entry: hits filled at once, keys with a read in flight join it,
   * the others go out as one MGET (with a PTTL each). `slot` and `fallback` are a router's.
   */
  mgetRead(sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number, keyIdx: readonly number[], mode: number, maxAge: number, slot: number, fallback: Fallback | undefined): void {
    const n = keyIdx.length;
    const values = new Array<unknown>(n);
    const whole = new MgetAssembly(sink, values, n);
    this.mgetInto(whole, 0, args, keyIdx, mode, maxAge, slot, fallback, name, sink);
  }

  /**
   * Fills positions `base + i` of `whole` for the keys at keyIdx (hits, shared reads, one MGET
   * for the rest). A router calls it once per group of keys that share a node (and slot).
   */
  mgetInto(whole: MgetAssembly, base: number, args: ArrayLike<unknown>, keyIdx: readonly number[], mode: number, maxAge: number, slot: number,
    fallback: Fallback | undefined, name: string, sink: ReplySink, positions?: readonly number[]): void {
    const node = this.node;
    const parts: PendingRead[] = [];
    const missArgs: unknown[] = [];
    for (let i = 0; i < keyIdx.length; i++) {
      const pos = positions !== undefined ? positions[i]! : base + i;
      const keyArg = args[keyIdx[i]!];
      const lookup = argLookup(keyArg)!;
      const v = node.get(mode, MGET_KEY, lookup, maxAge);
      if (v !== MISS) {
        whole.fill(pos, v);
        continue;
      }
      const shared = maxAge === 0 ? node.pending(mode, MGET_KEY, lookup) : undefined;
      if (shared !== undefined) {
        shared.waiters.push(whole.position(pos));
        continue;
      }
      const p = node.begin(mode, MGET_KEY, lookup, [canonicalKey(keyArg)], this.ttlFor(maxAge), slot);
      p.waiters.push(whole.position(pos));
      parts.push(p);
      missArgs.push(keyArg);
    }
    if (parts.length === 0) return;
    const encoded = encodeCommand(name, missArgs) as Encoded;
    this.sendRequest(parts, true, name, encoded, missArgs, sink, [name, ...missArgs], fallback);
  }

  /** Sends CACHING YES, the read and its PTTLs on this connection (tracking first, if needed). */
  sendRequest(parts: PendingRead[], perKey: boolean, name: string, encoded: Encoded, keyArgs: readonly unknown[], sink: ReplySink,
    argv: readonly unknown[], fallback: Fallback | undefined): void {
    const epoch = this.epoch;
    const req = new CachedRequest(this.node, parts, perKey, name, sink.returnBuffers, sink.bigInt, sink.resp3, encoded, argv, fallback,
      this.config!.prefixes === undefined, () => this.confirmedEpoch === epoch && this.epoch === epoch, keyArgs.length);
    req.send(this.conn, keyArgs, sink.deadline);
  }

  // ---------------------------------------------------------------- tracking

  /**
   * Puts `CLIENT TRACKING ON` in front of the first cached read on this socket. False when the
   * node's cache is off (tracking refused, or a connection that cannot receive pushes): the read
   * then goes out uncached.
   */
  ensureTracking(): boolean {
    if (!this.node.enabled) return false;
    if (this.trackingSent) return true;
    // A server that answered the handshake in RESP2 (no HELLO) cannot push invalidations here.
    const resp2 = this.conn.state === 'ready' && this.conn.protocol !== 3;
    if (resp2 || (!this.listening && !(this.listening = this.listen(this.conn, this.onPush)))) {
      this.refuse(new ClientStateError(`client-side cache for ${this.conn.address} is off: the connection does not speak RESP3, so the server cannot push invalidations; reads go to the server`));
      return false;
    }
    this.trackingSent = true;
    const prefixes = this.config!.prefixes;
    const args = prefixes === undefined ? ['TRACKING', 'ON', 'OPTIN'] : ['TRACKING', 'ON', 'BCAST', ...prefixes.flatMap((p) => ['PREFIX', p])];
    const epoch = this.epoch;
    this.conn.submit(encodeCommand('CLIENT', args) as Encoded, new TrackingSink((err) => {
      if (err === null) {
        if (this.conn.protocol !== 3) this.refuse(new ClientStateError(`client-side cache for ${this.conn.address} is off: the server speaks RESP2 only (no HELLO 3), so it cannot push invalidations; reads go to the server`));
        else if (this.epoch === epoch) this.confirmedEpoch = epoch;
      } else if (err.name === 'ReplyError') {
        this.refuse(err);
      }
    }));
    return true;
  }

  /** The server refused tracking (ACL, renamed command): said once, and the cache stays off. */
  private refuse(err: Error): void {
    this.node.enabled = false;
    this.node.clear();
    if (this.reportedRefusal) return;
    this.reportedRefusal = true;
    const why = err.name === 'ReplyError' ? new ClientStateError(`client-side cache for ${this.conn.address} is off: the server refused CLIENT TRACKING (${err.message}); reads go to the server`) : err;
    try {
      this.events.emit('error', why, this.conn);
    } catch (e) {
      queueMicrotask(() => { throw e; });
    }
  }

  /** The connection's socket closed: what it tracked can no longer be trusted. */
  onClose(): void {
    this.epoch++;
    if (!this.trackingSent) return;
    this.trackingSent = false;
    this.node.clear();
  }

  /** An invalidation push: `invalidate` with keys (or null: FLUSHALL/FLUSHDB), or the redirect broken. */
  readonly onPush = (frame: unknown): void => {
    if (!Array.isArray(frame) || frame.length === 0) return;
    const kind = String(frame[0]);
    if (kind === 'invalidate') {
      const keys = frame[1];
      if (!Array.isArray(keys)) {
        this.node.clear();
        return;
      }
      for (let i = 0; i < keys.length; i++) {
        const key = canonicalKey(keys[i]);
        // Bytes that are not UTF-8 decode lossily and may match no entry: drop everything.
        if (key.includes('\uFFFD')) {
          this.node.clear();
          return;
        }
        this.node.invalidate(key);
      }
    } else if (kind === 'tracking-redir-broken') {
      this.node.clear();
    }
  };
}

/** Drops from `node` the keys a write (or a script) is about to change; a keyless write clears it. */
export function dropWrittenKeys(node: NodeCache, table: CommandClassifier, info: CommandInfoLike, args: ArrayLike<unknown>, from: number): void {
  if (info.firstArgIsTheKey) {
    if (args.length > from) node.invalidate(canonicalKey(args[from]));
    return;
  }
  const keys = table.keyIndices(info, args, from);
  if (keys.length === 0) {
    if ((info.flags & FLAG_WRITE) !== 0) node.clear(); // FLUSHALL, FLUSHDB, SWAPDB...
    return;
  }
  for (let i = 0; i < keys.length; i++) node.invalidate(canonicalKey(args[keys[i]!]));
}

class TrackingSink implements ReplySink {
  readonly returnBuffers = false;
  deadline = 0;
  settled = false;
  constructor(private readonly done: (err: Error | null) => void, readonly command = 'CLIENT') {}
  resolveReply(): void {
    if (this.settled) return;
    this.settled = true;
    this.done(null);
  }
  rejectReply(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.done(err);
  }
}
