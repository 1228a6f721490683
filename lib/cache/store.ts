/**
 * NodeCache: the replies cached for one server, shared by every connection of a loop to it.
 *
 * - Entries are found by (decoding mode, command name as given, arguments): a hit is two Map
 *   lookups and an LRU relink, nothing else.
 * - Bounded in bytes (estimated, see entry-size.ts): past maxBytes the least recently used
 *   entries go. An entry is also bounded by the cache's ttl and by its keys' own expiry on the
 *   server (PTTL, read with the reply), so it is never served after the key expired there.
 * - A key index maps each Redis key to the entries and reads in flight that depend on it: an
 *   invalidation (the server's push, or an own write about to be sent) drops the entries and
 *   marks the reads in flight, whose replies are then returned but never kept. The read in
 *   flight also stops being shared, so a caller that asks after the invalidation gets a read
 *   sent after it.
 * - clear() (connection lost, FLUSHALL, tracking broken) drops everything and starts a new
 *   generation: no read sent before it can store its reply.
 */
import type { ReplySink } from '../base/reply-sink.js';
import { ENTRY_OVERHEAD, KEY_OVERHEAD, keepable, replyBytes } from './entry-size.js';
import { cacheChannel, type CacheMessage } from '../base/channels.js';

/** The table name per-key MGET entries live under (connection-cache.ts's MGET_KEY). */
const MGET_NAME = '\0MGET';

/** What NodeCache.get returns when it has no usable entry. */
export const MISS: unique symbol = Symbol('redloop.cache.miss');
export type Miss = typeof MISS;

/** Counters of one cache (or the sum over a cluster's or shard set's nodes). */
export interface CacheStats {
  /** Reads answered from memory. */
  hits: number;
  /** Reads sent to the server (concurrent misses of one read count once each). */
  misses: number;
  /** Entries dropped because their key changed: the server's invalidations and own writes. */
  invalidations: number;
  /** Entries dropped to stay under maxBytes. */
  evictions: number;
  /** Entries held now. */
  entries: number;
  /** Estimated bytes held now (never above maxBytes). */
  bytes: number;
}

export interface CacheSettings {
  /** Upper bound of the estimated bytes held. */
  maxBytes: number;
  /** Longest an entry is kept, in ms; 0 for no limit but invalidation and the key's expiry. */
  ttl: number;
}

/** Replies decoded otherwise (strings or Buffers, numbers or bigints, RESP2 shapes or native RESP3) are different entries. */
export const MODES = 8;
export function modeOf(returnBuffers: boolean, bigInt: boolean, resp3: boolean): number {
  return (returnBuffers ? 1 : 0) | (bigInt ? 2 : 0) | (resp3 ? 4 : 0);
}

/** A cached reply. `handle` is the loop's settled Future for it, made at the first hit and handed to every later one. */
export class Entry {
  prev: Entry | null = null;
  next: Entry | null = null;
  handle: unknown = undefined;
  constructor(
    readonly table: Map<string, Entry>,
    readonly lookup: string,
    readonly value: unknown,
    readonly keys: readonly string[],
    readonly bytes: number,
    readonly storedAt: number,
    readonly expiresAt: number,
    readonly slot: number,
  ) {}
}

/** A read in flight: the callers waiting for it, and whether an invalidation overtook it. */
export class PendingRead {
  readonly waiters: ReplySink[] = [];
  invalidated = false;
  /** Still findable by callers of the same read (until it completes or is invalidated). */
  shared = true;
  constructor(
    readonly table: Map<string, PendingRead>,
    readonly lookup: string,
    readonly entryTable: Map<string, Entry>,
    readonly keys: readonly string[],
    readonly generation: number,
    /** ms since epoch when it was sent: the ttl and the keys' PTTL count from here. */
    readonly sentAt: number,
    readonly ttl: number,
    readonly slot: number,
  ) {}
}

type Dependent = Entry | PendingRead;

/** The form keys are indexed in: a string as given, bytes as their UTF-8 text (how a push decodes them). */
export function canonicalKey(key: unknown): string {
  if (typeof key === 'string') return key;
  if (key instanceof Uint8Array) return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8');
  return String(key);
}

/**
 * The arguments as one lookup string (the command name is looked up separately): a single
 * string argument as itself, so the common read (GET key) builds nothing. undefined for an
 * argument the encoder would refuse (it then takes the uncached path and rejects there).
 */
export function lookupKey(args: ArrayLike<unknown>, from: number): string | undefined {
  const n = args.length - from;
  if (n === 1) return argLookup(args[from]);
  let s = '\0m';
  for (let i = from; i < args.length; i++) {
    const a = args[i];
    let piece: string;
    if (typeof a === 'string') piece = 's' + a;
    else if (typeof a === 'number' || typeof a === 'bigint') piece = 's' + String(a);
    else if (a instanceof Uint8Array) piece = 'b' + Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('latin1');
    else return undefined;
    s += piece.length + ':' + piece;
  }
  return s;
}

/** lookupKey of a single argument. */
export function argLookup(a: unknown): string | undefined {
  if (typeof a === 'string') return a.length !== 0 && a.charCodeAt(0) === 0 ? '\0s' + a : a;
  if (typeof a === 'number' || typeof a === 'bigint') return String(a);
  if (a instanceof Uint8Array) return '\0b' + Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('latin1');
  return undefined;
}

export class NodeCache {
  /** [mode] -> command name as given -> lookup -> entry. */
  private readonly tables: Array<Map<string, Map<string, Entry>>> = [];
  private readonly inflight: Array<Map<string, Map<string, PendingRead>>> = [];
  private readonly byKey = new Map<string, Dependent | Set<Dependent>>();
  /** LRU list: head is the least recently used. */
  private head: Entry | null = null;
  private tail: Entry | null = null;
  private count = 0;
  private size = 0;
  private lastName = '';
  private lastMode = -1;
  private lastTable: Map<string, Entry> | undefined = undefined;
  /** Bumped by clear(): reads sent before it never store. */
  generation = 0;
  /** False once the server refused tracking: nothing is cached, reads go out as they are. */
  enabled = true;
  readonly counters = { hits: 0, misses: 0, invalidations: 0, evictions: 0 };

  constructor(readonly address: string, readonly settings: CacheSettings) {
    for (let m = 0; m < MODES; m++) {
      this.tables.push(new Map());
      this.inflight.push(new Map());
    }
  }

  get stats(): CacheStats {
    return { ...this.counters, entries: this.count, bytes: this.size };
  }

  /**
   * The cached reply, or MISS. `maxAge` (ms, 0 for none) is the caller's own bound on the
   * entry's age (`{ cache: ttlMs }`).
   */
  get(mode: number, name: string, lookup: string, maxAge: number): unknown {
    const e = this.entry(mode, name, lookup, maxAge);
    return e === undefined ? MISS : e.value;
  }

  /** Whether a usable entry exists, without counting a hit or touching the LRU order. */
  has(mode: number, name: string, lookup: string, maxAge: number): boolean {
    const e = this.tables[mode]!.get(name)?.get(lookup);
    if (e === undefined) return false;
    if (e.expiresAt === Infinity && maxAge === 0) return true;
    const now = Date.now();
    return e.expiresAt > now && (maxAge === 0 || e.storedAt + maxAge > now);
  }

  /** The usable entry for this read (counted as a hit), or undefined. */
  entry(mode: number, name: string, lookup: string, maxAge: number): Entry | undefined {
    // Hot reads repeat one command: its table is remembered (a pointer compare for 'GET').
    let table: Map<string, Entry> | undefined;
    if (name === this.lastName && mode === this.lastMode) {
      table = this.lastTable!;
    } else {
      table = this.tables[mode]!.get(name);
      if (table === undefined) return undefined;
      this.lastName = name;
      this.lastMode = mode;
      this.lastTable = table;
    }
    const e = table.get(lookup);
    if (e === undefined) return undefined;
    if (e.expiresAt !== Infinity || maxAge !== 0) {
      const now = Date.now();
      if (e.expiresAt <= now) {
        this.remove(e);
        return undefined;
      }
      if (maxAge !== 0 && e.storedAt + maxAge <= now) return undefined;
    }
    if (e !== this.tail) this.touch(e);
    this.counters.hits++;
    if (cacheChannel.hasSubscribers) this.publish('hit', name, e.keys[0]);
    return e;
  }

  /** The shared read in flight for this lookup, if any. */
  pending(mode: number, name: string, lookup: string): PendingRead | undefined {
    return this.inflight[mode]!.get(name)?.get(lookup);
  }

  /**
   * Registers a read about to be sent, under its keys (canonical), so invalidations find it.
   * `ttl` is the caller's bound (0 for the cache's own).
   */
  begin(mode: number, name: string, lookup: string, keys: readonly string[], ttl: number, slot: number): PendingRead {
    let table = this.inflight[mode]!.get(name);
    if (table === undefined) this.inflight[mode]!.set(name, table = new Map());
    let entryTable = this.tables[mode]!.get(name);
    if (entryTable === undefined) this.tables[mode]!.set(name, entryTable = new Map());
    const p = new PendingRead(table, lookup, entryTable, keys, this.generation, Date.now(), ttl, slot);
    table.set(lookup, p);
    for (let i = 0; i < keys.length; i++) this.link(keys[i]!, p);
    this.counters.misses++;
    if (cacheChannel.hasSubscribers) this.publish('miss', name, keys[0]);
    if (!this.enabled) p.invalidated = true;
    return p;
  }

  /**
   * The read's reply arrived (or failed: `ok` false). Kept when nothing invalidated it since it
   * was sent, the cache was not cleared, and `pttls` (one per key, the server's PTTL) allow.
   * Returns the value to hand to callers (the kept copy when kept).
   */
  complete(p: PendingRead, value: unknown, ok: boolean, pttls: readonly unknown[] | undefined): void {
    this.settle(p);
    if (!ok || p.invalidated || p.generation !== this.generation || !this.enabled) return;
    let expiresAt = Infinity;
    const ttl = p.ttl !== 0 && (this.settings.ttl === 0 || p.ttl < this.settings.ttl) ? p.ttl : this.settings.ttl;
    if (ttl !== 0) expiresAt = p.sentAt + ttl;
    if (pttls !== undefined) {
      for (let i = 0; i < pttls.length; i++) {
        const t = pttls[i];
        const ms = typeof t === 'bigint' ? Number(t) : t;
        if (typeof ms !== 'number') return; // an error or something unexpected: not kept
        // -1: no expiry, -2: no such key (its creation will be invalidated like any write).
        if (ms >= 0 && p.sentAt + ms < expiresAt) expiresAt = p.sentAt + ms;
      }
    }
    if (expiresAt <= Date.now()) return;
    let bytes = ENTRY_OVERHEAD + replyBytes(value) + 16 + p.lookup.length;
    for (let i = 0; i < p.keys.length; i++) bytes += KEY_OVERHEAD + p.keys[i]!.length;
    if (bytes > this.settings.maxBytes) return;
    const old = p.entryTable.get(p.lookup);
    if (old !== undefined) this.remove(old);
    const e = new Entry(p.entryTable, p.lookup, value, p.keys, bytes, p.sentAt, expiresAt, p.slot);
    p.entryTable.set(p.lookup, e);
    for (let i = 0; i < e.keys.length; i++) this.link(e.keys[i]!, e);
    this.append(e);
    this.count++;
    this.size += bytes;
    while (this.size > this.settings.maxBytes && this.head !== null) {
      this.counters.evictions++;
      this.remove(this.head);
    }
  }

  /** Makes a read in flight unfindable and unlinks it from its keys. */
  private settle(p: PendingRead): void {
    if (p.shared) {
      p.shared = false;
      if (p.table.get(p.lookup) === p) p.table.delete(p.lookup);
    }
    for (let i = 0; i < p.keys.length; i++) this.unlink(p.keys[i]!, p);
  }

  /** The server (or an own write) says `key` changed: its entries go, its reads in flight are not kept. */
  invalidate(key: string): void {
    const deps = this.byKey.get(key);
    if (deps === undefined) return;
    if (cacheChannel.hasSubscribers) this.publish('invalidation', undefined, key);
    if (deps instanceof Set) {
      for (const d of [...deps]) this.drop(d);
    } else {
      this.drop(deps);
    }
  }

  private drop(d: Dependent): void {
    if (d instanceof Entry) {
      this.counters.invalidations++;
      this.remove(d);
    } else {
      d.invalidated = true;
      if (d.shared) {
        d.shared = false;
        if (d.table.get(d.lookup) === d) d.table.delete(d.lookup);
      }
    }
  }

  /** Drops everything and starts a new generation (reads in flight will not store). */
  clear(): void {
    this.generation++;
    if (cacheChannel.hasSubscribers) this.publish('invalidation', undefined, undefined);
    for (let m = 0; m < MODES; m++) {
      for (const table of this.inflight[m]!.values()) {
        for (const p of table.values()) {
          p.invalidated = true;
          p.shared = false;
        }
        table.clear();
      }
      for (const table of this.tables[m]!.values()) table.clear();
    }
    // Reads in flight stay linked until they settle (settle() unlinks them); entries go now.
    for (const [key, deps] of this.byKey) {
      if (deps instanceof Set) {
        for (const d of deps) if (d instanceof Entry) deps.delete(d);
        if (deps.size === 0) this.byKey.delete(key);
      } else if (deps instanceof Entry) {
        this.byKey.delete(key);
      }
    }
    this.head = this.tail = null;
    this.count = 0;
    this.size = 0;
  }

  /** Drops the entries of the given slots (a cluster's slots that changed owner). */
  dropSlots(moved: (slot: number) => boolean): void {
    for (let e = this.head; e !== null;) {
      const next = e.next;
      if (e.slot !== -1 && moved(e.slot)) this.remove(e);
      e = next;
    }
    for (let m = 0; m < MODES; m++) {
      for (const table of this.inflight[m]!.values()) {
        for (const p of [...table.values()]) if (p.slot !== -1 && moved(p.slot)) this.drop(p);
      }
    }
  }

  private remove(e: Entry): void {
    if (e.table.get(e.lookup) === e) e.table.delete(e.lookup);
    for (let i = 0; i < e.keys.length; i++) this.unlink(e.keys[i]!, e);
    const { prev, next } = e;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    e.prev = e.next = null;
    this.count--;
    this.size -= e.bytes;
  }

  private append(e: Entry): void {
    e.prev = this.tail;
    e.next = null;
    if (this.tail === null) this.head = e;
    else this.tail.next = e;
    this.tail = e;
  }

  private touch(e: Entry): void {
    const { prev, next } = e;
    if (prev === null) this.head = next;
    else prev.next = next;
    next!.prev = prev; // e is not the tail
    this.append(e);
  }

  private link(key: string, d: Dependent): void {
    const cur = this.byKey.get(key);
    if (cur === undefined) this.byKey.set(key, d);
    else if (cur instanceof Set) cur.add(d);
    else if (cur !== d) this.byKey.set(key, new Set([cur, d]));
  }

  private unlink(key: string, d: Dependent): void {
    const cur = this.byKey.get(key);
    if (cur === d) this.byKey.delete(key);
    else if (cur instanceof Set) {
      cur.delete(d);
      if (cur.size === 1) this.byKey.set(key, cur.values().next().value!);
      else if (cur.size === 0) this.byKey.delete(key);
    }
  }

  /** redloop:cache (only called while it has subscribers). */
  private publish(event: CacheMessage['event'], command: string | undefined, key: string | undefined): void {
    const message: CacheMessage = { event, address: this.address, command: command === MGET_NAME ? 'MGET' : command, key };
    cacheChannel.publish(message);
  }

  /** Keys in the key index (entries and reads in flight): for tests of the memory bound. */
  get indexedKeys(): number {
    return this.byKey.size;
  }
}

export { keepable };
