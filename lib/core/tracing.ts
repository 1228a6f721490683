/**
 * Tracing of commands on `redloop:command` (docs/tracing.md): the message a command carries
 * from sent to settled, with its arguments redacted as the loop's `traceArgs` says and never a
 * password, and the future that publishes when it settles.
 *
 * Nothing here runs unless the command channel has subscribers when a command is sent: the
 * loop checks that once per command and otherwise makes a plain Future. A traced command gets
 * a TracedFuture instead, the same object to the caller and to the connection's FIFO, which
 * publishes when the future settles, and only then: a MOVED or ASK the cluster follows is not
 * a settlement, so the command's span ends once, with the final answer.
 */
import { Connection } from '../connection/connection.js';
import { targetKind } from '../routing/targets.js';
import { commandChannel, TARGET_KIND, type CommandMessage, type TargetKind } from '../base/channels.js';
import { ConfigError } from '../base/errors.js';
import { Future } from './future.js';
import type { CommandTarget } from '../connection/target.js';

/**
 * What command messages keep of the arguments: 'redacted' (default) the key(s) and names, with
 * every value replaced by '?'; 'full' everything but secrets; 'none' nothing.
 */
export type TraceArgs = 'full' | 'redacted' | 'none';

export function checkTraceArgs(value: unknown): TraceArgs {
  if (value === undefined) return 'redacted';
  if (value === 'full' || value === 'redacted' || value === 'none') return value;
  throw new ConfigError(`traceArgs must be 'full', 'redacted' or 'none', got ${String(value)}`);
}

/** Arguments shown in a message; the rest are summed up as one "[n more arguments]". */
const MAX_ARGS = 100;
/** Characters of one argument shown; a longer one ends with "…". */
const MAX_ARG_CHARS = 256;
const REDACTED = '?';
const NO_ARGS: readonly string[] = Object.freeze([]);

// How 'redacted' keeps arguments: by command, what is a key or a name (kept) and what is a value.
const enum Shape {
  /** Only keys, names and options: kept whole. */
  All,
  /** Nothing is safe to show (ECHO's message, AUTH). */
  None,
  /** The first argument (the key); the default. */
  First,
  /** A subcommand and its first argument (CONFIG SET param, ACL SETUSER name, OBJECT ENCODING key). */
  Two,
  /** key value key value... (MSET). */
  KeyValuePairs,
  /** key field value field value... (HSET). */
  FieldValuePairs,
  /** script numkeys key... arg... (EVAL, FCALL): the script, numkeys and the keys. */
  Script,
}

const SHAPES = new Map<string, Shape>();
for (const name of [
  'GET', 'MGET', 'DEL', 'UNLINK', 'EXISTS', 'TOUCH', 'TYPE', 'TTL', 'PTTL', 'EXPIRETIME', 'PEXPIRETIME', 'PERSIST',
  'EXPIRE', 'PEXPIRE', 'EXPIREAT', 'PEXPIREAT', 'INCR', 'DECR', 'INCRBY', 'DECRBY', 'INCRBYFLOAT', 'STRLEN', 'GETDEL',
  'GETRANGE', 'RENAME', 'RENAMENX', 'COPY', 'WATCH', 'KEYS', 'SCAN', 'HSCAN', 'SSCAN', 'ZSCAN', 'SELECT', 'INFO', 'WAIT',
  'HGET', 'HMGET', 'HDEL', 'HEXISTS', 'HGETALL', 'HKEYS', 'HVALS', 'HLEN', 'HSTRLEN', 'HINCRBY', 'HINCRBYFLOAT',
  'LLEN', 'LRANGE', 'LINDEX', 'LPOP', 'RPOP', 'LMOVE', 'BLMOVE', 'RPOPLPUSH', 'BRPOPLPUSH', 'BLPOP', 'BRPOP', 'LMPOP', 'BLMPOP',
  'SCARD', 'SMEMBERS', 'SPOP', 'SRANDMEMBER', 'SINTER', 'SUNION', 'SDIFF', 'SINTERCARD', 'SINTERSTORE', 'SUNIONSTORE', 'SDIFFSTORE',
  'ZCARD', 'ZRANGE', 'ZREVRANGE', 'ZRANGEBYSCORE', 'ZREVRANGEBYSCORE', 'ZCOUNT', 'ZPOPMIN', 'ZPOPMAX', 'BZPOPMIN', 'BZPOPMAX',
  'PFCOUNT', 'XLEN', 'XRANGE', 'XREVRANGE', 'XREAD', 'XREADGROUP', 'XACK', 'XDEL', 'XTRIM',
  'SUBSCRIBE', 'UNSUBSCRIBE', 'PSUBSCRIBE', 'PUNSUBSCRIBE', 'SSUBSCRIBE', 'SUNSUBSCRIBE', 'FLUSHDB', 'FLUSHALL', 'DBSIZE',
]) SHAPES.set(name, Shape.All);
for (const name of ['ECHO', 'PING', 'AUTH']) SHAPES.set(name, Shape.None);
for (const name of [
  'ACL', 'CLIENT', 'CLUSTER', 'COMMAND', 'CONFIG', 'DEBUG', 'FUNCTION', 'LATENCY', 'MEMORY', 'MODULE', 'OBJECT', 'PUBSUB',
  'SCRIPT', 'SENTINEL', 'SLOWLOG', 'XGROUP', 'XINFO',
]) SHAPES.set(name, Shape.Two);
for (const name of ['MSET', 'MSETNX']) SHAPES.set(name, Shape.KeyValuePairs);
for (const name of ['HSET', 'HSETNX', 'HMSET']) SHAPES.set(name, Shape.FieldValuePairs);
for (const name of ['EVAL', 'EVALSHA', 'EVAL_RO', 'EVALSHA_RO', 'FCALL', 'FCALL_RO']) SHAPES.set(name, Shape.Script);

function argText(arg: unknown): string {
  let text: string;
  if (typeof arg === 'string') text = arg;
  else if (arg instanceof Uint8Array) text = Buffer.from(arg.buffer, arg.byteOffset, Math.min(arg.byteLength, MAX_ARG_CHARS * 4)).toString('utf8');
  else text = String(arg);
  return text.length > MAX_ARG_CHARS ? `${text.slice(0, MAX_ARG_CHARS)}…` : text;
}

/** Whether 'redacted' keeps argument `i` (0 = the first after the name) of a command of this shape. */
function keeps(shape: Shape, i: number, args: ArrayLike<unknown>, from: number): boolean {
  switch (shape) {
    case Shape.All: return true;
    case Shape.None: return false;
    case Shape.First: return i === 0;
    case Shape.Two: return i < 2;
    case Shape.KeyValuePairs: return i % 2 === 0;
    case Shape.FieldValuePairs: return i === 0 || i % 2 === 1;
    case Shape.Script: {
      const numkeys = Number(argText(args[from + 1]));
      return i < 2 || (Number.isInteger(numkeys) && i < 2 + numkeys);
    }
  }
}

const upper = (arg: unknown): string => (typeof arg === 'string' ? arg.toUpperCase() : arg instanceof Uint8Array ? Buffer.from(arg).toString('latin1').toUpperCase() : '');

/**
 * Replaces in `out` (the shown arguments) every secret the command carries, whatever the mode:
 * AUTH's arguments, HELLO's and MIGRATE's AUTH/AUTH2 password, CONFIG SET's and SENTINEL's
 * password settings, ACL SETUSER's password rules.
 */
function hideSecrets(command: string, args: ArrayLike<unknown>, from: number, out: string[]): void {
  const n = out.length;
  const hide = (i: number): void => { if (i < n) out[i] = REDACTED; };
  switch (command) {
    case 'AUTH':
      for (let i = 0; i < n; i++) out[i] = REDACTED;
      return;
    case 'HELLO': // HELLO protover [AUTH username password] [SETNAME name]
      for (let i = 1; i < n; i++) if (upper(args[from + i]) === 'AUTH') hide(i + 2);
      return;
    case 'MIGRATE': { // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS key...]
      for (let i = 5; i < n; i++) {
        const token = upper(args[from + i]);
        if (token === 'KEYS') return;
        if (token === 'AUTH') hide(i + 1);
        else if (token === 'AUTH2') hide(i + 2);
      }
      return;
    }
    case 'CONFIG': // CONFIG SET name value [name value ...]
      if (upper(args[from]) !== 'SET') return;
      for (let i = 1; i + 1 <= n; i += 2) if (/PASS|AUTH/.test(upper(args[from + i]))) hide(i + 1);
      return;
    case 'SENTINEL': // SENTINEL SET master auth-pass pw, SENTINEL CONFIG SET sentinel-pass pw
      for (let i = 1; i < n; i++) if (/PASS/.test(upper(args[from + i]))) hide(i + 1);
      return;
    case 'ACL': // ACL SETUSER name >password <password #hash !hash ...
      if (upper(args[from]) !== 'SETUSER') return;
      for (let i = 2; i < n; i++) {
        const c = out[i]!.charAt(0);
        if (c === '>' || c === '<' || c === '#' || c === '!') out[i] = REDACTED;
      }
      return;
  }
}

/** The arguments of a command as a message shows them under `mode`. */
export function traceArgsOf(command: string, args: ArrayLike<unknown>, from: number, mode: TraceArgs): readonly string[] {
  const count = args.length - from;
  if (mode === 'none' || count <= 0) return NO_ARGS;
  const shown = Math.min(count, MAX_ARGS);
  const out = new Array<string>(shown);
  const shape = mode === 'full' ? Shape.All : SHAPES.get(command) ?? Shape.First;
  for (let i = 0; i < shown; i++) out[i] = keeps(shape, i, args, from) ? argText(args[from + i]) : REDACTED;
  hideSecrets(command, args, from, out);
  if (count > shown) out.push(`[${count - shown} more arguments]`);
  return out;
}

interface Endpoint {
  serverAddress: string;
  serverPort: number | undefined;
  db: number;
}

const endpoints = new WeakMap<Connection, Endpoint>();

function endpointOf(conn: Connection): Endpoint {
  let e = endpoints.get(conn);
  if (e === undefined) {
    const o = conn.resolvedOptions;
    e = o.path !== undefined ? { serverAddress: o.path, serverPort: undefined, db: o.db } : { serverAddress: o.host, serverPort: o.port, db: o.db };
    endpoints.set(conn, e);
  }
  return e;
}

function targetKindOf(target: CommandTarget): TargetKind {
  const kind = targetKind(target);
  return kind !== 'other' ? kind : (target as { [TARGET_KIND]?: TargetKind })[TARGET_KIND] ?? 'other';
}

/**
 * The future of a traced command. It publishes error / asyncStart / asyncEnd when it settles,
 * once (a future settles once); a settlement during the send itself (a closed connection
 * refuses at once) is published after `end`, so a subscriber always sees start, end, then the
 * outcome.
 */
export class TracedFuture<T = unknown> extends Future<T> {
  private sending = true;
  private settledWhileSending = false;

  override resolveReply(reply: unknown): void {
    if (this.settled) return;
    super.resolveReply(reply);
    this.published();
  }

  override rejectReply(err: Error): void {
    if (this.settled) return;
    super.rejectReply(err);
    const trace = this.trace;
    if (trace !== undefined) trace.error = err;
    this.published();
  }

  /**
   * Starts the trace of a command about to be submitted: builds its message and publishes
   * `start`. `sent()` follows once the target has it.
   */
  begin(target: CommandTarget, name: string, args: ArrayLike<unknown>, from: number, mode: TraceArgs): void {
    const command = name.toUpperCase();
    const trace: CommandMessage = {
      command,
      args: traceArgsOf(command, args, from, mode),
      target: targetKindOf(target),
      serverAddress: undefined,
      serverPort: undefined,
      db: undefined,
      written: false,
      redirections: 0,
    };
    if (target instanceof Connection) {
      const e = endpointOf(target);
      trace.serverAddress = e.serverAddress;
      trace.serverPort = e.serverPort;
      trace.db = e.db;
    }
    this.trace = trace;
    commandChannel.start.publish(trace);
  }

  /** The target has the command: publishes `end` (the synchronous part is over), then an outcome it already had. */
  sent(): void {
    this.sending = false;
    commandChannel.end.publish(this.trace!);
    if (this.settledWhileSending) this.published();
  }

  private published(): void {
    const trace = this.trace;
    if (trace === undefined) return; // refused before it was traced (bad arguments)
    if (this.sending) {
      this.settledWhileSending = true;
      return;
    }
    if (trace.error !== undefined) commandChannel.error.publish(trace);
    commandChannel.asyncStart.publish(trace);
    commandChannel.asyncEnd.publish(trace);
  }
}
// Native consumers read `constructor` (Future's getter, which makes the Promise side follow);
// the class's own `constructor` data property would hide it and leave `await` waiting forever.
Reflect.deleteProperty(TracedFuture.prototype, 'constructor');
