/**
 * What a cached reply costs, and how it is kept: the byte estimate that bounds a cache (close to
 * V8's heap cost, measured by the cache bench's bytes per entry), and the copy that makes a reply
 * safe to hand to every later reader (arrays frozen, Buffers copied off the socket's chunk).
 */

/**
 * Bytes an entry costs beyond its reply and its strings: the entry object, its Map slots, its
 * LRU links, and the settled Future its hits share.
 */
export const ENTRY_OVERHEAD = 280;
/** Bytes one key of an entry costs in the key index (a Map slot, the string's header). */
export const KEY_OVERHEAD = 48;

/** Estimated heap bytes of a decoded reply. */
export function replyBytes(value: unknown): number {
  if (typeof value === 'string') return 16 + value.length;
  if (value === null || value === undefined || typeof value === 'boolean') return 0;
  if (typeof value === 'number') return 16;
  if (typeof value === 'bigint') return 24;
  if (value instanceof Uint8Array) return 96 + value.byteLength;
  if (Array.isArray(value)) {
    let n = 16 + 8 * value.length;
    for (let i = 0; i < value.length; i++) n += replyBytes(value[i]);
    return n;
  }
  if (value instanceof Map) {
    let n = 64 + 24 * value.size;
    for (const [k, v] of value) n += replyBytes(k) + replyBytes(v);
    return n;
  }
  if (value instanceof Set) {
    let n = 64 + 16 * value.size;
    for (const v of value) n += replyBytes(v);
    return n;
  }
  if (value instanceof Error) return 256 + value.message.length;
  return 64;
}

/**
 * The reply as the cache keeps it and hands it out: arrays frozen (a reader that changes one
 * would change every later reader's), Buffers copied (the decoder's are views of the socket's
 * chunk, which the cache must not keep alive). Returns the value to give the first reader too.
 */
export function keepable(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (v instanceof Uint8Array || Array.isArray(v) || v instanceof Map || v instanceof Set) value[i] = keepable(v);
    }
    return Object.freeze(value);
  }
  return value;
}
