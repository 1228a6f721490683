/**
 * Reply decoder (RESP2). A fast path of our own parses every reply that is in the buffer,
 * and resumes arrays that span socket chunks where they stopped; redis-parser takes the top-level
 * bulk strings too big to fit in a chunk (large GET values), which it assembles from the chunks
 * without copying them more than once.
 *
 * Why not redis-parser for everything: it decodes every string with a native call (about 70 ns,
 * where 1 to 8 ASCII bytes cost about 17 ns in JS: SUNION's 1500 members, +OK, +PONG), it builds
 * integers in floating point digit by digit (wrong beyond 2^53), and it puts its own error class
 * (not a redloop ReplyError) inside arrays.
 */
import RedisParser from 'redis-parser';
import { ProtocolError } from '../base/errors.js';

export interface ReplyHandler {
  /** A complete reply (string, number or bigint, null, Buffer, Error, or nested array of those). */
  onReply(reply: unknown): void;
  /** A top-level error reply; `message` is the server's text. */
  onErrorReply(message: string): void;
  /** The stream is not RESP; the decoder must be reset and the connection dropped. */
  onProtocolError(err: ProtocolError): void;
  /** The error to put in place of an error reply nested in an array (EXEC, EVAL). */
  nestedError(message: string): Error;
  /** In peekHead mode: the first element of a top-level array, before the rest is decoded. */
  onReplyHead?(first: unknown): void;
  /**
   * A pub/sub message push (`*3 $7 message $ channel $ message`, `*3 $8 smessage $ channel
   * $ message`, `*4 $8 pmessage $ pattern $ channel $ message`), without its array or type
   * string; only called while `pushMessages` is set. Must behave as onReply([kind, pattern?,
   * channel, message]) would.
   */
  onPushMessage?(channel: unknown, message: unknown, kind: PushMessageKind, pattern: unknown): void;
}

export type PushMessageKind = 'message' | 'pmessage' | 'smessage';

/** The heads of pub/sub message pushes: `*3\r\n$7\r\nmessage\r\n` and its two cousins. */
const MESSAGE_HEAD = Buffer.from('*3\r\n$7\r\nmessage\r\n', 'latin1');
const SMESSAGE_HEAD = Buffer.from('*3\r\n$8\r\nsmessage\r\n', 'latin1');
const PMESSAGE_HEAD = Buffer.from('*4\r\n$8\r\npmessage\r\n', 'latin1');
/** Channel names up to this long are compared with the last one in JS rather than decoded again. */
const CHANNEL_REUSE_MAX = 64;

/** Top-level bulk strings at least this long that are not in the buffer yet go to redis-parser. */
const BIG_BULK = 64 * 1024;
/** Digits that always make an integer below 2^53, so that n * 10 + d stays exact. */
const EXACT_DIGITS = 15;

const INCOMPLETE: unique symbol = Symbol('incomplete');
const OPENED: unique symbol = Symbol('array opened');
const FAILED: unique symbol = Symbol('not RESP');
type Parsed = unknown;

// Strings of 2 to 4 ASCII bytes (small numbers, OK, PONG, short fields) come from a cache, so a
// reply of 1500 of them allocates no strings at all: in SUNION-like replies held until a batch is
// awaited, allocation and garbage collection were the larger part of the client's time. (V8
// already shares the one-character strings.) Direct-mapped: a miss just replaces the entry.
const CACHE_BITS = 12;
const cacheKeys = new Int32Array(1 << CACHE_BITS);
const cacheLengths = new Uint8Array(1 << CACHE_BITS);
const cacheStrings = new Array<string>(1 << CACHE_BITS).fill('');

function shortAscii(buf: Buffer, start: number, n: number, key: number): string {
  const slot = (Math.imul(key ^ n, 0x9e3779b1) >>> (32 - CACHE_BITS));
  if (cacheKeys[slot] === key && cacheLengths[slot] === n) return cacheStrings[slot]!;
  const text = n === 2 ? String.fromCharCode(buf[start]!, buf[start + 1]!)
    : n === 3 ? String.fromCharCode(buf[start]!, buf[start + 1]!, buf[start + 2]!)
      : String.fromCharCode(buf[start]!, buf[start + 1]!, buf[start + 2]!, buf[start + 3]!);
  cacheKeys[slot] = key;
  cacheLengths[slot] = n;
  cacheStrings[slot] = text;
  return text;
}

/** A short ASCII string without the native call (~17 ns instead of ~70); the rest natively. */
function utf8(buf: Buffer, start: number, end: number): string {
  switch (end - start) {
    case 0: return '';
    case 1: { const a = buf[start]!; if (a < 128) return String.fromCharCode(a); break; }
    case 2: { const a = buf[start]!, b = buf[start + 1]!; if ((a | b) < 128) return shortAscii(buf, start, 2, a | (b << 8)); break; }
    case 3: {
      const a = buf[start]!, b = buf[start + 1]!, c = buf[start + 2]!;
      if ((a | b | c) < 128) return shortAscii(buf, start, 3, a | (b << 8) | (c << 16));
      break;
    }
    case 4: {
      const a = buf[start]!, b = buf[start + 1]!, c = buf[start + 2]!, d = buf[start + 3]!;
      if ((a | b | c | d) < 128) return shortAscii(buf, start, 4, a | (b << 8) | (c << 16) | (d << 24));
      break;
    }
    case 5: case 6: case 7: case 8: {
      let bits = 0;
      for (let i = start; i < end; i++) bits |= buf[i]!;
      if (bits < 128) {
        const a = buf[start]!, b = buf[start + 1]!, c = buf[start + 2]!, d = buf[start + 3]!, e = buf[start + 4]!;
        const n = end - start;
        if (n === 5) return String.fromCharCode(a, b, c, d, e);
        if (n === 6) return String.fromCharCode(a, b, c, d, e, buf[start + 5]!);
        if (n === 7) return String.fromCharCode(a, b, c, d, e, buf[start + 5]!, buf[start + 6]!);
        return String.fromCharCode(a, b, c, d, e, buf[start + 5]!, buf[start + 6]!, buf[start + 7]!);
      }
      break;
    }
  }
  return buf.toString('utf8', start, end);
}

/** The index of the next CR, or -1; a JS loop beats the native indexOf on lines this short. */
function lineEnd(buf: Buffer, from: number): number {
  const n = buf.length;
  for (let i = from; i < n; i++) if (buf[i] === 13) return i;
  return -1;
}

export class ReplyDecoder {
  /**
   * @internal For the benchmark only: false sends every chunk to redis-parser as before the fast
   * path (replies lose the exactness above), so `npm run bench` can show what the fast path is worth.
   */
  static fastPath = true;

  /** Whether bulk/simple strings of the replies parsed next come back as Buffers; read per reply. */
  returnBuffers: boolean;
  /** Whether integer replies parsed next come back as bigints (exact) instead of numbers. */
  bigInt: boolean;
  /** Whether the next top-level array's first element goes to handler.onReplyHead early. */
  peekHead = false;

  private readonly handler: ReplyHandler;
  /** The buffer being parsed, and where. */
  private buf: Buffer | undefined = undefined;
  private pos = 0;
  /** Arrays being filled, outermost first, and the next index of each. */
  private readonly arrays: unknown[][] = [];
  private readonly indexes: number[] = [];
  /** An element cut by the end of a chunk (its first bytes), and the chunks that came after. */
  private tail: Buffer[] = [];
  private tailBytes = 0;
  /** Bytes the cut element needs before it is worth parsing again (0: unknown, try every chunk). */
  private need = 0;
  /** Set by element(): the total length of a bulk string that did not fit. */
  private bulkNeed = 0;
  /** Bytes of a big bulk string still owed to redis-parser. */
  private bigLeft = 0;
  private parser: RedisParser | undefined = undefined;
  /**
   * @internal Set by a push-mode connection (a subscriber's): message pushes go to
   * handler.onPushMessage without an array per message, and a channel name that repeats is not
   * decoded again.
   */
  pushMessages = false;
  /** The last channel name decoded for a message push (its bytes and its string). */
  private channelBytes: Buffer | undefined = undefined;
  private channelText = '';

  constructor(handler: ReplyHandler, returnBuffers = false, bigInt = false) {
    this.handler = handler;
    this.returnBuffers = returnBuffers;
    this.bigInt = bigInt;
  }

  /** Feeds one chunk from the socket; replies are delivered synchronously, in order. */
  feed(chunk: Buffer): void {
    if (!ReplyDecoder.fastPath) {
      this.redisParser().optionReturnBuffers = this.returnBuffers;
      this.parser!.execute(chunk);
      return;
    }
    if (this.bigLeft !== 0) {
      const n = Math.min(this.bigLeft, chunk.length);
      this.bigLeft -= n;
      this.parser!.execute(n === chunk.length ? chunk : chunk.subarray(0, n)); // the reply is delivered when complete
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    let buf = chunk;
    if (this.tailBytes !== 0) {
      this.tail.push(chunk);
      this.tailBytes += chunk.length;
      if (this.tailBytes < this.need) return;
      buf = Buffer.concat(this.tail, this.tailBytes);
      this.tail = [];
      this.tailBytes = 0;
      this.need = 0;
    }
    this.buf = buf;
    this.pos = 0;
    this.parse(buf);
  }

  private parse(buf: Buffer): void {
    const arrays = this.arrays;
    const indexes = this.indexes;
    const handler = this.handler;
    for (;;) {
      const depth = arrays.length;
      if (depth !== 0) {
        // Inside an array: fill it from where it stopped.
        const array = arrays[depth - 1]!;
        let i = indexes[depth - 1]!;
        const n = array.length;
        const len = buf.length;
        while (i < n) {
          const start = this.pos;
          if (start >= len) {
            indexes[depth - 1] = i;
            this.keepTail(buf, start);
            return;
          }
          if (buf[start] === 36 && buf[start + 1] !== 45) {
            // Inline: a bulk string that is all in the buffer (SUNION, LRANGE, HGETALL members).
            let p = start + 1;
            let size = 0;
            let c = 0;
            while (p < len && (c = buf[p]!) !== 13) {
              size = size * 10 + c - 48;
              p++;
            }
            const end = p + 2 + size;
            if (end + 2 <= len) {
              array[i++] = this.returnBuffers ? buf.subarray(p + 2, end) : utf8(buf, p + 2, end);
              this.pos = end + 2;
              continue;
            }
          }
          const value = this.element(buf, start);
          if (value === FAILED) return;
          if (value === INCOMPLETE) {
            indexes[depth - 1] = i;
            this.keepTail(buf, start);
            return;
          }
          if (value === OPENED) break;
          array[i++] = value;
        }
        if (i < n) {
          indexes[depth - 1] = i; // a nested array opened at i; it is stored there when complete
          continue;
        }
        arrays.pop();
        indexes.pop();
        if (depth > 1) {
          arrays[depth - 2]![indexes[depth - 2]!++] = array;
          continue;
        }
        handler.onReply(array);
        if (this.buf !== buf) return; // reset by the handler
        continue;
      }
      const start = this.pos;
      if (start >= buf.length) {
        this.buf = undefined;
        return;
      }
      if (buf[start] === 45) { // '-': a top-level error reply
        const end = lineEnd(buf, start + 1);
        if (end === -1 || end + 1 >= buf.length) {
          this.keepTail(buf, start);
          return;
        }
        this.pos = end + 2;
        handler.onErrorReply(buf.toString('utf8', start + 1, end));
        if (this.buf !== buf) return;
        continue;
      }
      if (this.pushMessages && buf[start] === 42 && this.pushMessage(buf, start)) {
        if (this.buf !== buf) return;
        continue;
      }
      const value = this.element(buf, start);
      if (value === FAILED) return;
      if (value === INCOMPLETE) {
        if (this.bulkNeed >= BIG_BULK && buf[start] === 36) {
          this.toRedisParser(buf, start);
          return;
        }
        this.keepTail(buf, start);
        return;
      }
      if (value === OPENED) {
        if (this.peekHead) {
          this.peekFirst(buf);
          if (this.buf !== buf) return;
        }
        continue;
      }
      handler.onReply(value);
      if (this.buf !== buf) return;
    }
  }

  /**
   * The first element of the top-level array just opened, if it is a bulk string already in the
   * buffer, goes to handler.onReplyHead; the array is then filled as usual (reading it again).
   * An array opens once per reply, even when its elements span chunks, so this runs once.
   */
  private peekFirst(buf: Buffer): void {
    const at = this.pos;
    if (at >= buf.length || buf[at] !== 36) return;
    const first = this.element(buf, at);
    this.pos = at;
    if (first === INCOMPLETE || first === FAILED || first === null) return;
    this.handler.onReplyHead?.(first);
  }

  /**
   * A whole message push at `start` goes to handler.onPushMessage (true); anything else, or one
   * cut by the end of the buffer, is left to the general path (false), which reads it the same way.
   */
  private pushMessage(buf: Buffer, start: number): boolean {
    // '*3' + '$7' is a message, '*3' + '$8' an smessage, '*4' + '$8' a pmessage.
    const kind: PushMessageKind = buf[start + 1] === 52 ? 'pmessage' : buf[start + 5] === 56 ? 'smessage' : 'message';
    const head = kind === 'message' ? MESSAGE_HEAD : kind === 'smessage' ? SMESSAGE_HEAD : PMESSAGE_HEAD;
    const len = buf.length;
    if (start + head.length + 4 > len) return false;
    for (let i = 1; i < head.length; i++) if (buf[start + i] !== head[i]) return false;
    // [$<pattern length>\r\n<pattern>\r\n] $<channel length>\r\n<channel>\r\n $<message length>\r\n<message>\r\n
    let p = start + head.length;
    let patternFrom = 0;
    let patternEnd = 0;
    if (kind === 'pmessage') {
      if ((patternEnd = this.bulkEnd(buf, p)) === -1) return false;
      patternFrom = this.bulkFrom;
      p = patternEnd + 2;
    }
    const channelEnd = this.bulkEnd(buf, p);
    if (channelEnd === -1) return false;
    const channelFrom = this.bulkFrom;
    const messageEnd = this.bulkEnd(buf, channelEnd + 2);
    if (messageEnd === -1) return false;
    const messageFrom = this.bulkFrom;
    this.pos = messageEnd + 2;
    if (this.returnBuffers) {
      this.handler.onPushMessage!(buf.subarray(channelFrom, channelEnd), buf.subarray(messageFrom, messageEnd), kind,
        kind === 'pmessage' ? buf.subarray(patternFrom, patternEnd) : undefined);
    } else if (kind === 'pmessage') {
      // The pattern repeats from message to message; the channel it matched may not.
      this.handler.onPushMessage!(utf8(buf, channelFrom, channelEnd), utf8(buf, messageFrom, messageEnd), kind, this.channel(buf, patternFrom, patternEnd));
    } else {
      this.handler.onPushMessage!(this.channel(buf, channelFrom, channelEnd), utf8(buf, messageFrom, messageEnd), kind, undefined);
    }
    return true;
  }

  /** Set by bulkEnd(): where the bulk string's bytes start. */
  private bulkFrom = 0;

  /**
   * The end of the non-null bulk string at `p` whose bytes and CRLF are all in `buf` (its start
   * in this.bulkFrom), or -1 for anything else, which the general path then reads.
   */
  private bulkEnd(buf: Buffer, p: number): number {
    const len = buf.length;
    if (p + 4 > len || buf[p] !== 36 || buf[p + 1] === 45) return -1;
    let size = 0;
    let c = 0;
    p++;
    while (p < len && (c = buf[p]!) !== 13) { size = size * 10 + c - 48; p++; }
    if (p >= len) return -1;
    const from = p + 2;
    const end = from + size;
    if (end + 2 > len) return -1;
    this.bulkFrom = from;
    return end;
  }

  /** A channel name as a string: the last one again when its bytes are the same (one subscriber, few channels). */
  private channel(buf: Buffer, from: number, end: number): string {
    const n = end - from;
    const last = this.channelBytes;
    if (last !== undefined && last.length === n) {
      let i = 0;
      while (i < n && last[i] === buf[from + i]) i++;
      if (i === n) return this.channelText;
    }
    const text = utf8(buf, from, end);
    if (n <= CHANNEL_REUSE_MAX) {
      this.channelBytes = Buffer.from(buf.subarray(from, end));
      this.channelText = text;
    }
    return text;
  }

  /**
   * Parses the element at `start`: its value, INCOMPLETE if the buffer ends inside it, OPENED
   * when it is a non-empty array (pushed on the stack, filled by parse()), FAILED if not RESP.
   */
  private element(buf: Buffer, start: number): Parsed {
    const len = buf.length;
    const type = buf[start]!;
    let p = start + 1;
    if (type === 36) { // '$' bulk string
      let size = 0;
      let c = 0;
      if (buf[p] === 45) { // $-1: null
        if (p + 4 > len) return INCOMPLETE;
        this.pos = p + 4;
        return null;
      }
      while (p < len && (c = buf[p]!) !== 13) {
        size = size * 10 + c - 48;
        p++;
      }
      const from = p + 2;
      const end = from + size;
      if (end + 2 > len || p >= len) {
        this.bulkNeed = p >= len ? 0 : end + 2 - start;
        return INCOMPLETE;
      }
      this.pos = end + 2;
      return this.returnBuffers ? buf.subarray(from, end) : utf8(buf, from, end);
    }
    if (type === 42) { // '*' array
      let count = 0;
      let c = 0;
      if (buf[p] === 45) { // *-1: null
        if (p + 4 > len) return INCOMPLETE;
        this.pos = p + 4;
        return null;
      }
      while (p < len && (c = buf[p]!) !== 13) {
        count = count * 10 + c - 48;
        p++;
      }
      if (p + 1 >= len) return INCOMPLETE;
      this.pos = p + 2;
      if (count === 0) return [];
      this.arrays.push(new Array(count));
      this.indexes.push(0);
      return OPENED;
    }
    if (type === 43 || type === 45) { // '+' simple string, '-' error (nested: top-level ones never get here)
      const end = lineEnd(buf, p);
      if (end === -1 || end + 1 >= len) return INCOMPLETE;
      this.pos = end + 2;
      if (type === 45) return this.handler.nestedError(buf.toString('utf8', p, end));
      return this.returnBuffers ? buf.subarray(p, end) : utf8(buf, p, end);
    }
    if (type === 58) { // ':' integer
      const negative = buf[p] === 45;
      if (negative) p++;
      const digitsFrom = p;
      let n = 0;
      let c = 0;
      while (p < len && (c = buf[p]!) !== 13) {
        n = n * 10 + c - 48;
        p++;
      }
      if (p + 1 >= len) return INCOMPLETE;
      this.pos = p + 2;
      const digits = p - digitsFrom;
      if (this.bigInt) {
        if (digits <= EXACT_DIGITS) return BigInt(negative ? -n : n);
        return BigInt(buf.toString('latin1', start + 1, p));
      }
      if (digits <= EXACT_DIGITS) return negative ? 0 - n : n;
      return Number(buf.toString('latin1', start + 1, p)); // correctly rounded: the nearest double
    }
    this.protocolError(buf, start);
    return FAILED;
  }

  /** Keeps the cut element for the next chunk (with the byte count it needs, when known). */
  private keepTail(buf: Buffer, start: number): void {
    this.buf = undefined;
    if (start >= buf.length) return;
    const cut = buf.subarray(start);
    this.tail = [cut];
    this.tailBytes = cut.length;
    this.need = buf[start] === 36 ? this.bulkNeed : 0;
    this.bulkNeed = 0;
  }

  /** A big top-level bulk string: redis-parser gets exactly its bytes, and delivers it. */
  private toRedisParser(buf: Buffer, start: number): void {
    const total = this.bulkNeed;
    this.bulkNeed = 0;
    this.buf = undefined;
    const parser = this.redisParser();
    parser.optionReturnBuffers = this.returnBuffers;
    const have = buf.length - start;
    this.bigLeft = total - have;
    parser.execute(start === 0 ? buf : buf.subarray(start));
  }

  private redisParser(): RedisParser {
    return this.parser ??= new RedisParser({
      returnReply: (reply) => this.handler.onReply(reply),
      returnError: (err) => this.handler.onErrorReply(err.message),
      returnFatalError: (err) =>
        this.handler.onProtocolError(new ProtocolError(`server sent bytes that are not RESP: ${err.message}`)),
    });
  }

  private protocolError(buf: Buffer, at: number): void {
    const byte = JSON.stringify(String.fromCharCode(buf[at]!));
    this.reset();
    this.handler.onProtocolError(new ProtocolError(`server sent bytes that are not RESP: Protocol error, got ${byte} as reply type byte`));
  }

  /** Drops any half-parsed reply (after a disconnect). */
  reset(): void {
    this.buf = undefined;
    this.pos = 0;
    this.arrays.length = 0;
    this.indexes.length = 0;
    this.tail = [];
    this.tailBytes = 0;
    this.need = 0;
    this.bulkNeed = 0;
    this.bigLeft = 0;
    this.parser?.reset();
  }
}
