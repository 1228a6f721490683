/**
 * The client-side cache's options and its public handle (`conn.cache`, `cluster.cache`), here at
 * the bottom so that connections, routers and the options parser can name them; the cache
 * itself lives in lib/cache/.
 */
import { ConfigError } from './errors.js';

export interface CacheOptions {
  /** Upper bound of the memory the cache of one server holds (estimated bytes). Default 64 MiB. */
  maxBytes?: number | undefined;
  /** Longest an entry is kept, in ms; 0 (default) for no limit but invalidation and the key's expiry. */
  ttl?: number | undefined;
  /** Cache every cacheable read, not only those sent with `{ cache: true | ttlMs }`. Default false. */
  auto?: boolean | undefined;
  /**
   * Broadcast mode: the server invalidates every key under these prefixes (CLIENT TRACKING ON
   * BCAST PREFIX ...), and only keys under them are cached. Default: opt-in mode, where the
   * server remembers the keys this client read.
   */
  prefixes?: readonly string[] | undefined;
}

export interface ResolvedCacheOptions {
  maxBytes: number;
  ttl: number;
  auto: boolean;
  prefixes: readonly string[] | undefined;
}

/** Counters of a cache (a cluster's or shard set's: summed over its nodes). */
export interface CacheStats {
  /** Reads answered from memory (an MGET counts each key). */
  hits: number;
  /** Reads that went to the server. */
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

/** `conn.cache`, `cluster.cache`, `shards.cache`: undefined when the target has no cache. */
export interface CacheControl {
  readonly stats: CacheStats;
  /** Drops every entry (reads in flight return their reply but do not keep it). */
  clear(): void;
}

export const DEFAULT_CACHE_MAX_BYTES = 64 * 2 ** 20;

/** Validates `cache` (an object, true for the defaults, false or undefined for none). */
export function resolveCacheOptions(value: unknown): ResolvedCacheOptions | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { maxBytes: DEFAULT_CACHE_MAX_BYTES, ttl: 0, auto: false, prefixes: undefined };
  if (value === null || typeof value !== 'object') throw new ConfigError(`cache must be an object ({ maxBytes, ttl, auto, prefixes }), true or false, got ${value === null ? 'null' : typeof value}`);
  const known = ['maxBytes', 'ttl', 'auto', 'prefixes'];
  for (const k of Object.keys(value)) if (!known.includes(k)) throw new ConfigError(`unknown cache option "${k}" (known: ${known.join(', ')})`);
  const { maxBytes = DEFAULT_CACHE_MAX_BYTES, ttl = 0, auto = false, prefixes } = value as CacheOptions;
  if (typeof maxBytes !== 'number' || !(maxBytes > 0) || !Number.isFinite(maxBytes)) throw new ConfigError(`cache.maxBytes must be a positive number of bytes, got ${String(maxBytes)}`);
  if (typeof ttl !== 'number' || !(ttl >= 0) || !Number.isFinite(ttl)) throw new ConfigError(`cache.ttl must be a non-negative number of ms (0 for no limit), got ${String(ttl)}`);
  if (typeof auto !== 'boolean') throw new ConfigError('cache.auto must be a boolean');
  if (prefixes !== undefined) {
    if (!Array.isArray(prefixes) || prefixes.length === 0 || prefixes.some((p) => typeof p !== 'string')) {
      throw new ConfigError('cache.prefixes must be a non-empty array of strings (key prefixes for broadcast mode)');
    }
  }
  return { maxBytes, ttl, auto, prefixes: prefixes === undefined ? undefined : Object.freeze([...prefixes]) };
}
