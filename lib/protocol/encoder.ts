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

function nameHeader(name: string): string {
  let header = NAME_HEADERS.get(name);
  if (header === undefined) {
    header = '$' + Buffer.byteLength(name) + CRLF + name + CRLF;
    if (NAME_HEADERS.size < MAX_CACHED_NAMES) NAME_HEADERS.set(name, header);
  }
  return header;
}

/** UTF-8 byte length; a JS scan beats the native call for the short ASCII strings keys usually are. */
function byteLength(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s);
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 127) return Buffer.byteLength(s);
  return n;
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
  let out = (count < 64 ? ARRAY_HEADERS[count]! : '*' + count + CRLF) + nameHeader(name);
  let pieces: Array<string | Buffer> | undefined;
  for (let i = from; i < n; i++) {
    const a = args[i];
    if (typeof a === 'string') {
      out += '$' + byteLength(a) + CRLF + a + CRLF;
    } else if (typeof a === 'number') {
      if (!Number.isFinite(a)) return badArgument(name, i - from + 1, a);
      const s = String(a);
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
