/**
 * Reply decoder (RESP2 and RESP3). A fast path of our own parses every reply that is in the buffer,
 * and resumes arrays that span socket chunks where they stopped; redis-parser takes the top-level
 * bulk strings too big to fit in a chunk (large GET values), which it assembles from the chunks
 * without copying them more than once.
 *
 * Why not redis-parser for everything: it decodes every string with a native call (about 70 ns,
 * where 1 to 8 ASCII bytes cost about 17 ns in JS: SUNION's 1500 members, +OK, +PONG), it builds
 * integers in floating point digit by digit (wrong beyond 2^53), and it puts its own error class
 * (not a redloop ReplyError) inside arrays, and it knows no RESP3.
 *
 * RESP3 types cost the RESP2 path nothing: they are tested after `$ * + : -`, and maps and sets
 * are filled by the same array loop. By default every RESP3 value takes the shape RESP2 gives it
 * (a map is a flat array, a set an array, a double its text, a boolean 1 or 0, `_` null, a
 * verbatim string its text, an attribute is dropped); with `resp3` set they are native (Map, Set,
 * number, boolean, bigint, VerbatimString, AttributedReply: see docs/resp3.md). Push frames (`>`)
 * never reach onReply: they go to handler.onPush, decoded with the push mode (pushReturnBuffers),
 * whatever mode the pending reply asked for.
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
   * $ message`, `*4 $8 pmessage $ pattern $ channel $ message`, or the same as a RESP3 `>` push
   * when `push`), without its array or type string; only called while `pushMessages` is set.
   * Must behave as onReply (RESP2) or onPush (RESP3) of [kind, pattern?, channel, message] would.
   */
  onPushMessage?(channel: unknown, message: unknown, push: boolean, kind: PushMessageKind, pattern: unknown): void;
  /**
   * A RESP3 push frame (`>`), as an array in RESP2 shapes (`['invalidate', [...keys]]`,
   * `['message', channel, message]`...). Never a reply: the FIFO of pending replies is untouched.
   * A handler without it gets push frames through onReply.
   */
  onPush?(frame: unknown[]): void;
}

/** A RESP3 verbatim string (`=`) with `resp3` on: its text, and its format (`txt`, `mkd`). */
export class VerbatimString extends String {
  constructor(text: string, readonly format: string) {
    super(text);
  }
}

/**
 * A value the server sent with a RESP3 attribute (`|`) before it, with `resp3` on: the value at
 * its place in the reply, and the attribute as a Map. Without `resp3`, attributes are dropped.
 */
export class AttributedReply<T = unknown> {
  constructor(readonly value: T, readonly attributes: Map<unknown, unknown>) {}
}

/** What a frame on the stack becomes once filled (see ReplyDecoder.specialDepths). */
const ARRAY = 0;
const MAP = 1;
const SET = 2;
const PUSH = 3;
const ATTRIBUTE = 4;
/** Flag on a frame that holds values an attribute came before (resp3 mode). */
const HAS_ATTRIBUTES = 8;

export type PushMessageKind = 'message' | 'pmessage' | 'smessage';

/** The heads of pub/sub message pushes (after the `*` or `>`): `3\r\n$7\r\nmessage\r\n` and its two cousins. */
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
/** The element was handled in place (a top-level blob error): nothing to store or deliver. */
const HANDLED: unique symbol = Symbol('handled');
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
  /** Whether RESP3 types of the replies parsed next come back native (Map, Set...) instead of in RESP2 shapes. */
  resp3 = false;
  /** Whether the next top-level array's first element goes to handler.onReplyHead early. */
  peekHead = false;
  /** How push frames decode their strings (the connection's own setting, not the pending reply's). */
  pushReturnBuffers = false;

  private readonly handler: ReplyHandler;
  /** The buffer being parsed, and where. */
  private buf: Buffer | undefined = undefined;
  private pos = 0;
  /** Arrays being filled, outermost first, and the next index of each. */
  private readonly arrays: unknown[][] = [];
  private readonly indexes: number[] = [];
  /**
   * The open frames that are not plain arrays (MAP, SET, PUSH, ATTRIBUTE, or flagged
   * HAS_ATTRIBUTES): their depths (increasing) and kinds. Plain arrays, all of RESP2 and most of
   * RESP3, are not in it, so opening and closing them costs what it did before RESP3.
   */
  private readonly specialDepths: number[] = [];
  private readonly specialKinds: number[] = [];
  /** The reply mode while a push frame is being read in the push mode (see setMode). */
  private inPush = false;
  private replyReturnBuffers = false;
  private replyBigInt = false;
  private replyResp3 = false;
  /** resp3 mode: an attribute read at top level, for the next top-level reply. */
  private topAttributes: Map<unknown, unknown> | undefined = undefined;
  /** resp3 mode: values inside open frames that an attribute came before. */
  private attributed: Array<{ array: unknown[]; index: number; attributes: Map<unknown, unknown> }> = [];
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

  constructor(handler: ReplyHandler, returnBuffers = false, bigInt = false, resp3 = false) {
    this.handler = handler;
    this.returnBuffers = this.replyReturnBuffers = this.pushReturnBuffers = returnBuffers;
    this.bigInt = this.replyBigInt = bigInt;
    this.resp3 = this.replyResp3 = resp3;
  }

  /**
   * How the next replies decode. While a push frame is being read (it may span chunks) it keeps
   * the push mode, and the new mode applies from the next reply on.
   */
  setMode(returnBuffers: boolean, bigInt: boolean, resp3: boolean): void {
    this.replyReturnBuffers = returnBuffers;
    this.replyBigInt = bigInt;
    this.replyResp3 = resp3;
    if (this.inPush) return;
    this.returnBuffers = returnBuffers;
    this.bigInt = bigInt;
    this.resp3 = resp3;
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
          if (value === HANDLED) continue; // an empty attribute
          array[i++] = value;
        }
        if (i < n) {
          indexes[depth - 1] = i; // a nested array opened at i; it is stored there when complete
          continue;
        }
        arrays.pop();
        indexes.pop();
        let value: unknown = array;
        const specials = this.specialDepths;
        if (specials.length !== 0 && specials[specials.length - 1] === depth) {
          specials.pop();
          value = this.close(this.specialKinds.pop()!, array, depth);
          if (value === HANDLED) {
            if (this.buf !== buf) return; // reset by the handler
            continue;
          }
        }
        if (depth > 1) {
          arrays[depth - 2]![indexes[depth - 2]!++] = value;
          continue;
        }
        if (this.topAttributes !== undefined) value = this.attribute(value);
        handler.onReply(value);
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
        this.topAttributes = undefined;
        handler.onErrorReply(buf.toString('utf8', start + 1, end));
        if (this.buf !== buf) return;
        continue;
      }
      if (this.pushMessages && (buf[start] === 42 || buf[start] === 62) && this.pushMessage(buf, start)) {
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
        if (this.peekHead && !this.inPush) {
          this.peekFirst(buf);
          if (this.buf !== buf) return;
        }
        continue;
      }
      if (value === HANDLED) {
        if (this.buf !== buf) return;
        continue;
      }
      handler.onReply(this.topAttributes === undefined ? value : this.attribute(value));
      if (this.buf !== buf) return;
    }
  }

  /**
   * A filled frame that is not a plain array: its value, or HANDLED when it is no value of its
   * parent (a push, delivered to onPush; an attribute, kept for the value it comes before).
   */
  private close(kind: number, array: unknown[], depth: number): unknown {
    if ((kind & HAS_ATTRIBUTES) !== 0) {
      const attributed = this.attributed;
      for (let i = 0; i < attributed.length;) {
        const a = attributed[i]!;
        if (a.array !== array) { i++; continue; }
        array[a.index] = new AttributedReply(array[a.index], a.attributes);
        attributed.splice(i, 1);
      }
      kind &= ~HAS_ATTRIBUTES;
    }
    switch (kind) {
      case MAP: return toMap(array);
      case SET: return new Set(array);
      case PUSH:
        this.endPush();
        if (this.handler.onPush !== undefined) this.handler.onPush(array);
        else this.handler.onReply(array);
        return HANDLED;
      case ATTRIBUTE: {
        if (!this.resp3) return HANDLED; // RESP2 shapes: the server's extra data is dropped
        const attributes = toMap(array);
        if (depth === 1) {
          this.topAttributes = attributes;
        } else {
          const parent = this.arrays[depth - 2]!;
          const specials = this.specialDepths;
          const last = specials.length - 1;
          if (last >= 0 && specials[last] === depth - 1) {
            this.specialKinds[last] = this.specialKinds[last]! | HAS_ATTRIBUTES;
          } else {
            specials.push(depth - 1);
            this.specialKinds.push(ARRAY | HAS_ATTRIBUTES);
          }
          this.attributed.push({ array: parent, index: this.indexes[depth - 2]!, attributes });
        }
        return HANDLED;
      }
      default: return array;
    }
  }

  /** The next top-level reply, with the attribute read before it. */
  private attribute(value: unknown): unknown {
    const attributes = this.topAttributes!;
    this.topAttributes = undefined;
    return new AttributedReply(value, attributes);
  }

  /** A top-level push frame opens: decoded in the push mode until it closes. */
  private startPush(): void {
    this.inPush = true;
    this.returnBuffers = this.pushReturnBuffers;
    this.bigInt = false;
    this.resp3 = false;
  }

  private endPush(): void {
    this.inPush = false;
    this.returnBuffers = this.replyReturnBuffers;
    this.bigInt = this.replyBigInt;
    this.resp3 = this.replyResp3;
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
    // '*3' + '$7' is a message, '*3' + '$8' an smessage, '*4' + '$8' a pmessage ('>' for '*' in RESP3).
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
    const push = buf[start] === 62;
    if (push ? this.pushReturnBuffers : this.returnBuffers) {
      this.handler.onPushMessage!(buf.subarray(channelFrom, channelEnd), buf.subarray(messageFrom, messageEnd), push, kind,
        kind === 'pmessage' ? buf.subarray(patternFrom, patternEnd) : undefined);
    } else if (kind === 'pmessage') {
      // The pattern repeats from message to message; the channel it matched may not.
      this.handler.onPushMessage!(utf8(buf, channelFrom, channelEnd), utf8(buf, messageFrom, messageEnd), push, kind, this.channel(buf, patternFrom, patternEnd));
    } else {
      this.handler.onPushMessage!(this.channel(buf, channelFrom, channelEnd), utf8(buf, messageFrom, messageEnd), push, kind, undefined);
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
    return this.resp3Element(buf, start, type);
  }

  /** The RESP3 types (after the RESP2 ones, so that these cost RESP2 replies nothing). */
  private resp3Element(buf: Buffer, start: number, type: number): Parsed {
    const len = buf.length;
    let p = start + 1;
    switch (type) {
      case 37: // '%' map
      case 126: // '~' set
      case 62: // '>' push
      case 124: { // '|' attribute
        let count = 0;
        let c = 0;
        if (buf[p] === 45) { // no RESP3 server sends a null aggregate; read one as null
          const end = lineEnd(buf, p);
          if (end === -1 || end + 1 >= len) return INCOMPLETE;
          this.pos = end + 2;
          return null;
        }
        while (p < len && (c = buf[p]!) !== 13) {
          if (c < 48 || c > 57) break;
          count = count * 10 + c - 48;
          p++;
        }
        if (p < len && c !== 13) break; // not a length: not RESP
        if (p + 1 >= len) return INCOMPLETE;
        this.pos = p + 2;
        const top = this.arrays.length === 0;
        let kind: number;
        if (type === 37) {
          count *= 2;
          kind = this.resp3 ? MAP : ARRAY;
        } else if (type === 126) {
          kind = this.resp3 ? SET : ARRAY;
        } else if (type === 124) {
          count *= 2;
          kind = ATTRIBUTE;
        } else {
          kind = top ? PUSH : ARRAY; // pushes are top-level frames; a nested one is an array
        }
        if (kind === PUSH) this.startPush();
        if (count === 0) {
          if (kind === ARRAY) return [];
          return this.close(kind, [], this.arrays.length + 1);
        }
        this.arrays.push(new Array(count));
        this.indexes.push(0);
        if (kind !== ARRAY) {
          this.specialDepths.push(this.arrays.length);
          this.specialKinds.push(kind);
        }
        return OPENED;
      }
      case 44: { // ',' double
        const end = lineEnd(buf, p);
        if (end === -1 || end + 1 >= len) return INCOMPLETE;
        this.pos = end + 2;
        if (!this.resp3) return this.returnBuffers ? buf.subarray(p, end) : buf.toString('latin1', p, end);
        return parseDouble(buf.toString('latin1', p, end));
      }
      case 35: { // '#' boolean
        if (p + 3 > len) return INCOMPLETE;
        this.pos = p + 3;
        const yes = buf[p] === 116; // 't'
        if (this.resp3) return yes;
        return this.bigInt ? (yes ? 1n : 0n) : (yes ? 1 : 0);
      }
      case 95: // '_' null
        if (p + 2 > len) return INCOMPLETE;
        this.pos = p + 2;
        return null;
      case 40: { // '(' big number
        const end = lineEnd(buf, p);
        if (end === -1 || end + 1 >= len) return INCOMPLETE;
        this.pos = end + 2;
        if (this.resp3) return BigInt(buf.toString('latin1', p, end));
        return this.returnBuffers ? buf.subarray(p, end) : buf.toString('latin1', p, end);
      }
      case 61: // '=' verbatim string
      case 33: { // '!' blob error
        let size = 0;
        let c = 0;
        while (p < len && (c = buf[p]!) !== 13) {
          if (c < 48 || c > 57) break;
          size = size * 10 + c - 48;
          p++;
        }
        if (p < len && c !== 13) break; // not a length: not RESP
        const from = p + 2;
        const end = from + size;
        if (end + 2 > len || p >= len) {
          this.bulkNeed = p >= len ? 0 : end + 2 - start;
          return INCOMPLETE;
        }
        this.pos = end + 2;
        if (type === 33) {
          const message = buf.toString('utf8', from, end);
          if (this.arrays.length !== 0) return this.handler.nestedError(message);
          this.topAttributes = undefined;
          this.handler.onErrorReply(message);
          return HANDLED;
        }
        // "txt:" then the text: RESP2 sends the text alone.
        const textFrom = size >= 4 && buf[from + 3] === 58 ? from + 4 : from;
        if (this.returnBuffers) {
          const bytes = buf.subarray(textFrom, end);
          if (this.resp3) Object.defineProperty(bytes, 'format', { value: buf.toString('latin1', from, textFrom - 1) });
          return bytes;
        }
        const text = utf8(buf, textFrom, end);
        return this.resp3 ? new VerbatimString(text, buf.toString('latin1', from, textFrom - 1)) : text;
      }
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
    const type = buf[start];
    this.need = type === 36 || type === 61 || type === 33 ? this.bulkNeed : 0;
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
    this.specialDepths.length = 0;
    this.specialKinds.length = 0;
    if (this.inPush) this.endPush();
    this.topAttributes = undefined;
    this.attributed = [];
    this.tail = [];
    this.tailBytes = 0;
    this.need = 0;
    this.bulkNeed = 0;
    this.bigLeft = 0;
    this.parser?.reset();
  }
}

/** A map's flat [key, value, ...] as a Map, in the server's order (no `__proto__` trap, any key). */
function toMap(flat: unknown[]): Map<unknown, unknown> {
  const map = new Map<unknown, unknown>();
  for (let i = 0; i < flat.length; i += 2) map.set(flat[i], flat[i + 1]);
  return map;
}

/** A RESP3 double's text as a number: `inf`, `-inf` and `nan` included. */
function parseDouble(text: string): number {
  switch (text) {
    case 'inf': return Infinity;
    case '-inf': return -Infinity;
    case 'nan': case '-nan': return NaN;
    default: return Number(text);
  }
}
