/**
 * RESP request framer: splits a byte stream of RESP commands (what `redis-cli --pipe`
 * reads) into whole commands without decoding them, so mass insertion can write the input
 * bytes as they are and still know how many replies to expect.
 *
 * Only arrays of bulk strings are accepted, the form every client library sends. Anything
 * else (inline commands, an empty array, a bad length) is rejected with the byte offset of
 * the first bad byte, before any of it reaches the server: a server that meets bad RESP
 * answers with an error and closes the connection, and the reply count would be lost.
 */
import { MalformedInputError } from '../base/errors.js';

export { MalformedInputError };

/** Redis refuses bulk strings longer than proto-max-bulk-len (512 MB by default). */
const MAX_BULK = 512 * 1024 * 1024;
/** Redis refuses multibulk lengths above 1024*1024 for unauthenticated clients; INT_MAX otherwise. */
const MAX_ARGS = 0x7fffffff;

const STAR = 0x2a;
const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;

/** Complete commands found in the input so far: `bytes` holds exactly `count` of them. */
export interface FramedBatch {
  bytes: Buffer;
  count: number;
}

const INCOMPLETE = -1;

export class RespRequestFramer {
  /** Bytes consumed (handed out in batches) so far. */
  private consumed = 0;
  /** Input kept after the last complete command. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** Bytes the partial command needs before another parse attempt is worth it. */
  private need = 0;
  /** The first error; the framer refuses everything after it. */
  private bad: MalformedInputError | undefined;
  /** Set by scan() when it runs out of input: bytes the command needs at least. */
  private wanted = 0;

  /** Total bytes seen, complete or not. */
  get bytesIn(): number {
    return this.consumed + this.partsLength;
  }

  /** The first malformed input seen (push() and end() throw it from then on). */
  get error(): MalformedInputError | undefined {
    return this.bad;
  }

  /**
   * Adds a chunk; returns the complete commands it finishes (undefined if none). At the
   * first byte that cannot start or continue a command, the whole commands before it are
   * still returned and `error` is set; the next push() or end() throws it.
   */
  push(chunk: Buffer): FramedBatch | undefined {
    if (this.bad !== undefined) throw this.bad;
    if (chunk.length === 0) return undefined;
    let buf: Buffer;
    if (this.partsLength === 0) {
      buf = chunk;
    } else {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      // A large bulk string arrives in many chunks: join them once, when it is complete.
      if (this.partsLength < this.need) return undefined;
      buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
    }
    let pos = 0;
    let count = 0;
    const n = buf.length;
    while (pos < n) {
      let end: number;
      try {
        end = this.scan(buf, pos);
      } catch (err) {
        // The commands before the bad one are handed out; the error is thrown by the next call.
        if (!(err instanceof MalformedInputError)) throw err;
        this.consumed += pos;
        return count === 0 ? undefined : { bytes: buf.subarray(0, pos), count };
      }
      if (end === INCOMPLETE) break;
      pos = end;
      count++;
    }
    if (pos < n) {
      const rest = buf.subarray(pos);
      this.parts.push(rest);
      this.partsLength = rest.length;
      this.need = Math.max(this.wanted, rest.length + 1);
    } else {
      this.need = 0;
    }
    this.consumed += pos;
    if (count === 0) return undefined;
    // A batch of a whole chunk is the chunk itself; otherwise a view, never a copy.
    return { bytes: pos === n ? buf : buf.subarray(0, pos), count };
  }

  /** Call at end of input: throws if it stopped in the middle of a command. */
  end(): void {
    if (this.bad !== undefined) throw this.bad;
    if (this.partsLength !== 0) {
      throw new MalformedInputError(
        `input ends in the middle of a command that starts at byte ${this.consumed} (${this.partsLength} bytes of it were read)`,
        { offset: this.consumed });
    }
  }

  private fail(buf: Buffer, at: number, start: number, what: string): never {
    const offset = this.consumed + at; // `buf` starts at byte `consumed` of the input
    const got = at < buf.length ? describeByte(buf[at]!) : 'the end of the input';
    const context = at === start ? '' : ` (in the command that starts at byte ${this.consumed + start})`;
    this.bad = new MalformedInputError(`malformed RESP at byte ${offset}${context}: expected ${what}, got ${got}`, { offset });
    throw this.bad;
  }

  /**
   * Scans one command at `start`: returns the offset after it, or INCOMPLETE (setting
   * `wanted`). Offsets in errors count from the start of the whole input.
   */
  private scan(buf: Buffer, start: number): number {
    const n = buf.length;
    if (buf[start] !== STAR) {
      this.fail(buf, start, start, buf[start] === CR || buf[start] === LF
        ? "'*' (an empty line is not a command)"
        : "'*' starting a RESP array (inline commands are not accepted; use --format text for one command per line)");
    }
    let pos = start + 1;
    const args = this.readNumber(buf, pos, start, MAX_ARGS, 'the number of arguments');
    if (args === INCOMPLETE) return this.incomplete(n - start + 1);
    pos = this.numberEnd;
    if (args === 0) this.fail(buf, start + 1, start, 'at least 1 argument (an empty command gets no reply)');
    for (let i = 0; i < args; i++) {
      if (pos >= n) return this.incomplete(n - start + 1);
      if (buf[pos] !== DOLLAR) this.fail(buf, pos, start, `'$' starting bulk string ${i + 1} of ${args}`);
      const len = this.readNumber(buf, pos + 1, start, MAX_BULK, `the length of bulk string ${i + 1}`);
      if (len === INCOMPLETE) return this.incomplete(n - start + 1);
      pos = this.numberEnd + len;
      if (pos + 2 > n) return this.incomplete(pos + 2 - start);
      if (buf[pos] !== CR || buf[pos + 1] !== LF) this.fail(buf, buf[pos] !== CR ? pos : pos + 1, start, `CRLF after the ${len} bytes of bulk string ${i + 1}`);
      pos += 2;
    }
    return pos;
  }

  private numberEnd = 0;

  /** Reads digits then CRLF at `pos`; returns the value (numberEnd = after CRLF) or INCOMPLETE. */
  private readNumber(buf: Buffer, pos: number, start: number, max: number, what: string): number {
    const n = buf.length;
    let value = 0;
    let i = pos;
    for (; i < n; i++) {
      const c = buf[i]!;
      if (c >= 0x30 && c <= 0x39) {
        value = value * 10 + (c - 0x30);
        if (value > max) this.fail(buf, i, start, `${what} (at most ${max})`);
        continue;
      }
      if (c !== CR) this.fail(buf, i, start, i === pos ? `a digit (${what})` : `a digit or CRLF (${what})`);
      if (i === pos) this.fail(buf, i, start, `a digit (${what})`);
      if (i + 1 >= n) return INCOMPLETE;
      if (buf[i + 1] !== LF) this.fail(buf, i + 1, start, `LF after CR (${what})`);
      this.numberEnd = i + 2;
      return value;
    }
    return INCOMPLETE;
  }

  private incomplete(wanted: number): number {
    this.wanted = wanted;
    return INCOMPLETE;
  }
}

function describeByte(b: number): string {
  if (b === CR) return 'CR (\\r)';
  if (b === LF) return 'LF (\\n)';
  if (b >= 0x20 && b < 0x7f) return `'${String.fromCharCode(b)}'`;
  return `byte 0x${b.toString(16).padStart(2, '0')}`;
}
