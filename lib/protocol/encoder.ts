/**
 * RESP encoder. Commands are encoded at call time so that a bad argument is caught before
 * anything is queued, and so the write path only concatenates ready-made pieces.
 *
 * Fast path: a command made only of strings and numbers becomes a single JS string (V8 builds
 * it as a rope; the socket converts it to bytes once per batch). A command with Buffer
 * arguments becomes a list of pieces so the Buffers are never copied.
 */

/** Anything sendCommand accepts as an argument. */
export type Arg = string | number | bigint | Buffer | Uint8Array;

/** One encoded command: one string, or string and Buffer pieces written in order. */
export type Encoded = string | Array<string | Buffer>;

const CRLF = '\r\n';

// Precomputed pieces: most commands have few arguments and a handful of names, and building
// these from numbers on every call was a third of the encoding time.
const ARRAY_HEADERS: string[] = [];
for (let i = 0; i < 64; i++) ARRAY_HEADERS.push('*' + i + CRLF);
const NAME_HEADERS = new Map<string, string>();
const MAX_CACHED_NAMES = 1024;

/**
 * Commands whose replies are not one per command: SUBSCRIBE and friends answer once per
 * channel and then push messages, MONITOR streams, CLIENT REPLY OFF|SKIP answers nothing.
 * On a pipelined connection every reply after them would go to the wrong future.
 */
const NOT_ONE_REPLY = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'SUNSUBSCRIBE', 'MONITOR']);

/**
 * The header for a command name not in the cache, or a TypeError for the commands above. Their
 * names (and CLIENT, whose REPLY subcommand needs a look at the arguments) are never cached, so
 * a cached name needs no check.
 */
function uncachedNameHeader(name: string, args: ArrayLike<unknown>, from: number): string | TypeError {
  const upper = name.length <= 12 ? name.toUpperCase() : '';
  let cache = true;
  if (NOT_ONE_REPLY.has(upper)) return notOneReply(upper);
  if (upper === 'CLIENT') {
    cache = false;
    const mode = from + 1 < args.length && argText(args[from]) === 'REPLY' ? argText(args[from + 1]) : '';
    if (mode === 'OFF' || mode === 'SKIP') return notOneReply(`CLIENT REPLY ${mode}`);
  }
  const header = '$' + Buffer.byteLength(name) + CRLF + name + CRLF;
  if (cache && NAME_HEADERS.size < MAX_CACHED_NAMES) NAME_HEADERS.set(name, header);
  return header;
}

/** A short argument's text, upper-cased (strings and bytes alike); '' for anything else. */
function argText(a: unknown): string {
  if (typeof a === 'string') return a.length <= 8 ? a.toUpperCase() : '';
  if (a instanceof Uint8Array && a.length <= 8) return Buffer.from(a.buffer, a.byteOffset, a.length).toString('latin1').toUpperCase();
  return '';
}

function notOneReply(what: string): TypeError {
  return new TypeError(
    `${what} is refused: redloop pipelines on one reply per command, and after it the server sends ` +
    'more replies or none, which would go to the wrong futures (redloop has no pub/sub or MONITOR mode)');
}

/** UTF-8 byte length; a JS scan beats the native call for the short ASCII strings keys usually are. */
function byteLength(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s);
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 127) return Buffer.byteLength(s);
  return n;
}

/**
 * A number as Redis must read it back: an integer as its exact decimal digits (String() prints
 * 2**62 as 4611686018427388000 and 1e21 as 1e+21), any other finite number as String() prints it,
 * the shortest text that parses back to the same double (strtold reads its exponent form).
 * undefined for NaN and the infinities.
 */
function numberText(a: number): string | undefined {
  if (a <= 9007199254740991 && a >= -9007199254740991) return String(a); // NaN fails both tests
  if (Number.isInteger(a)) return BigInt(a).toString(); // beyond 2^53 every finite double is an integer
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

function badArgument(command: string, position: number, value: unknown): TypeError {
  return new TypeError(
    `${command}: argument ${position} is ${describe(value)}; ` +
    'arguments must be strings, Buffers/Uint8Arrays, finite numbers or bigints');
}

/**
 * Encodes `name args...` as a RESP array of bulk strings. Returns a TypeError (not thrown)
 * naming the first bad argument, so the caller can reject just that command's future.
 * Positions count from 1 after the command name, as in `SET key value` (key is 1).
 */
export function encodeCommand(name: string, args: ArrayLike<unknown>, from = 0): Encoded | TypeError {
  const n = args.length;
  const count = n - from + 1;
  let header = NAME_HEADERS.get(name);
  if (header === undefined) {
    const h = uncachedNameHeader(name, args, from);
    if (typeof h !== 'string') return h;
    header = h;
  }
  let out = (count < 64 ? ARRAY_HEADERS[count]! : '*' + count + CRLF) + header;
  let pieces: Array<string | Buffer> | undefined;
  for (let i = from; i < n; i++) {
    const a = args[i];
    if (typeof a === 'string') {
      out += '$' + byteLength(a) + CRLF + a + CRLF;
    } else if (typeof a === 'number') {
      const s = numberText(a);
      if (s === undefined) return badArgument(name, i - from + 1, a);
      out += '$' + s.length + CRLF + s + CRLF;
    } else if (typeof a === 'bigint') {
      const s = a.toString();
      out += '$' + s.length + CRLF + s + CRLF;
    } else if (a instanceof Uint8Array) {
      const buf = Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      pieces ??= [];
      pieces.push(out + '$' + buf.length + CRLF, buf);
      out = CRLF;
    } else {
      return badArgument(name, i - from + 1, a);
    }
  }
  if (pieces === undefined) return out;
  pieces.push(out);
  return pieces;
}

/** Byte length of an encoded command (for stats and backpressure accounting). */
export function encodedLength(cmd: Encoded): number {
  if (typeof cmd === 'string') return Buffer.byteLength(cmd);
  let total = 0;
  for (const p of cmd) total += typeof p === 'string' ? Buffer.byteLength(p) : p.length;
  return total;
}

/** Validates a command name: a non-empty string. */
export function checkCommandName(name: unknown): TypeError | undefined {
  if (typeof name !== 'string' || name.length === 0) {
    return new TypeError(`command name must be a non-empty string, got ${describe(name)}`);
  }
  return undefined;
}
