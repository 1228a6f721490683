/**
 * One command per line with redis-cli's quoting (sdssplitargs): arguments are separated by
 * whitespace; "double quotes" understand \n \r \t \b \a \" \\ and \xHH; 'single quotes'
 * understand only \'; a closing quote must be followed by whitespace or the end of the line.
 * Blank lines are skipped.
 */
import { MalformedInputError } from '../protocol/requestframer.js';

/** One parsed argument: a string, or a Buffer when a \xHH escape made bytes that are not UTF-8 text. */
export type TextArg = string | Buffer;

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
const HEX = /^[0-9a-fA-F]{2}$/;

/** Collects one argument's characters, and switches to bytes if an escape needs it. */
class ArgBuilder {
  text = '';
  bytes: number[] | undefined;
  char(c: string): void {
    if (this.bytes === undefined) this.text += c;
    else for (const b of Buffer.from(c, 'utf8')) this.bytes.push(b);
  }
  byte(b: number): void {
    if (b < 0x80 && this.bytes === undefined) { this.text += String.fromCharCode(b); return; }
    if (this.bytes === undefined) this.bytes = [...Buffer.from(this.text, 'utf8')];
    this.bytes.push(b);
  }
  take(): TextArg {
    return this.bytes === undefined ? this.text : Buffer.from(this.bytes);
  }
}

const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' };

/**
 * Splits one line into arguments the way redis-cli does. Throws MalformedInputError (with
 * `line` when given) on unbalanced quotes or a closing quote glued to the next character.
 */
export function splitArgs(input: string, line?: number): TextArg[] {
  const where = line === undefined ? '' : `line ${line}, `;
  if (!input.includes('"') && !input.includes("'")) {
    // Fast path: without quotes, backslashes are literal and only whitespace matters.
    const out: TextArg[] = [];
    for (const word of input.split(/[ \t\n\r\v\f]+/)) if (word !== '') out.push(word);
    return out;
  }
  const args: TextArg[] = [];
  const n = input.length;
  let p = 0;
  for (;;) {
    while (p < n && isSpace(input[p]!)) p++;
    if (p >= n) return args;
    const arg = new ArgBuilder();
    let quote: '"' | "'" | undefined;
    let openedAt = p;
    /** A closing quote must end the argument: the position after it, or malformed input. */
    const afterClosingQuote = (at: number): number => {
      if (at + 1 < n && !isSpace(input[at + 1]!)) {
        throw new MalformedInputError(`${where}column ${at + 2}: a closing quote must be followed by a space or the end of the line`, { line });
      }
      return at + 1;
    };
    for (;;) {
      const c = input[p];
      if (quote === '"') {
        if (c === undefined) throw new MalformedInputError(`${where}column ${openedAt + 1}: unbalanced double quote`, { line });
        if (c === '\\' && input[p + 1] === 'x' && HEX.test(input.slice(p + 2, p + 4))) {
          arg.byte(parseInt(input.slice(p + 2, p + 4), 16));
          p += 4;
          continue;
        }
        if (c === '\\' && p + 1 < n) {
          const e = input[p + 1]!;
          arg.char(SIMPLE_ESCAPES[e] ?? e);
          p += 2;
          continue;
        }
        if (c === '"') {
          p = afterClosingQuote(p);
          break;
        }
        arg.char(c);
        p++;
      } else if (quote === "'") {
        if (c === undefined) throw new MalformedInputError(`${where}column ${openedAt + 1}: unbalanced single quote`, { line });
        if (c === '\\' && input[p + 1] === "'") { arg.char("'"); p += 2; continue; }
        if (c === "'") {
          p = afterClosingQuote(p);
          break;
        }
        arg.char(c);
        p++;
      } else {
        if (c === undefined || isSpace(c)) break;
        if (c === '"' || c === "'") { quote = c; openedAt = p; p++; continue; }
        // Surrogate pairs stay together: input[p] is one UTF-16 unit.
        arg.char(c);
        p++;
      }
    }
    args.push(arg.take());
  }
}

/**
 * Commands from a byte stream of lines (LF or CRLF; a last line without LF counts). Keeps
 * what it needs to turn a command index back into its line number.
 */
export class TextCommandReader implements AsyncIterable<TextArg[]> {
  /** [commandIndex, line] where the line stops being index + 1 + the previous shift. */
  private readonly marks: number[] = [];
  private shift = 0; // line - 1 - index for the commands read so far
  private commands = 0;
  private lines = 0;
  private bytes = 0;

  constructor(private readonly input: AsyncIterable<Buffer | string>) {}

  /** Bytes read so far. */
  get bytesIn(): number {
    return this.bytes;
  }

  /** The 1-based line command `index` (0-based, blank lines not counted) was read from. */
  lineOf(index: number): number {
    const marks = this.marks;
    let lo = 0;
    let hi = marks.length / 2 - 1;
    let shift = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid * 2]! <= index) { shift = marks[mid * 2 + 1]!; lo = mid + 1; } else hi = mid - 1;
    }
    return index + 1 + shift;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TextArg[]> {
    let rest: Buffer | undefined;
    for await (const raw of this.input) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
      this.bytes += chunk.length;
      const buf = rest === undefined ? chunk : Buffer.concat([rest, chunk]);
      rest = undefined;
      let start = 0;
      for (;;) {
        const lf = buf.indexOf(0x0a, start);
        if (lf === -1) break;
        const args = this.parseLine(buf, start, lf);
        start = lf + 1;
        if (args !== undefined) yield args;
      }
      if (start < buf.length) rest = buf.subarray(start);
    }
    if (rest !== undefined && rest.length !== 0) {
      const args = this.parseLine(rest, 0, rest.length);
      if (args !== undefined) yield args;
    }
  }

  private parseLine(buf: Buffer, start: number, end: number): TextArg[] | undefined {
    const line = ++this.lines;
    const args = splitArgs(buf.toString('utf8', start, end), line);
    if (args.length === 0) return undefined;
    const shift = line - 1 - this.commands;
    if (shift !== this.shift) {
      this.shift = shift;
      this.marks.push(this.commands, shift);
    }
    this.commands++;
    return args;
  }
}
