/**
 * massInsert's options and report: the public types, their defaults, and the check that refuses
 * bad options before anything is sent.
 */
import type { Arg } from '../../protocol/encoder.js';
import { ConfigError, MassInsertError, type MassInsertFailure, type MassInsertReport } from '../../base/errors.js';

// The report types and MassInsertError live in errors.ts with every error class; massInsert's modules re-export them.
export { MassInsertError, type MassInsertFailure, type MassInsertReport };
import { MAX_TIMER_MS } from '../../base/options.js';

export type MassInsertCommand = readonly Arg[];

/**
 * Commands (argument arrays) from an iterable, an async iterable or an object-mode stream;
 * or RESP bytes (what `redis-cli --pipe` reads) from a byte stream or chunks of bytes.
 */
export type MassInsertSource =
  | Iterable<MassInsertCommand>
  | AsyncIterable<MassInsertCommand>
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array | string>
  | NodeJS.ReadableStream;

export interface MassInsertProgress {
  /** Commands written (or queued to be written) to the server. */
  sent: number;
  /** Replies read, error replies included (0 with replies: 'off'). */
  replies: number;
  /** Failures so far: error replies, bad arguments, commands lost with the connection. */
  errors: number;
  /** RESP input: bytes read from the source. */
  bytesIn?: number;
  elapsedMs: number;
}

export interface MassInsertOptions {
  /**
   * 'on' (default): every reply is read and counted; error replies are reported by index.
   * 'off': the commands run under CLIENT REPLY OFF on a connection of their own (opened with
   * the target's options, closed at the end), so the server sends no replies at all; an ECHO
   * marker after CLIENT REPLY ON tells when it has processed everything. Faster, but the
   * server's errors are NOT reported (only bad arguments are). On a cluster or shard set,
   * one such connection per master, and commands are routed by their key's slot by
   * massInsert itself: no MOVED or ASK can be seen (there are no replies), so a slot that
   * moves during such a load loses the commands sent to its old owner. Keep the cluster still.
   */
  replies?: 'on' | 'off';
  /** How many failures the report lists (the lowest command indices). Default 100. */
  maxErrors?: number;
  /** Called every `progressInterval` ms while running, and once at the end. */
  onProgress?: (progress: MassInsertProgress) => void;
  /** ms between progress calls. Default 250. */
  progressInterval?: number;
  /**
   * Most replies owed at once; the source is pulled again when 1/8 of them have arrived.
   * Default 8192. On a cluster or shard set, per master: the window is this times the number
   * of masters, and each node's own limits (maxPending, maxBufferedBytes) hold as well.
   */
  maxInFlight?: number;
  /**
   * ms to wait while replies are owed and none arrives (with replies: 'off', for the final
   * marker) before giving up with a TimeoutError. 0 (default) waits forever. After a timeout
   * the late replies are still read and dropped, so the connection stays in step.
   */
  timeout?: number;
  /**
   * How to read the source: 'commands' (argument arrays) or 'resp' (bytes). Default: 'resp'
   * for a byte stream (e.g. process.stdin), 'commands' for anything else.
   */
  input?: 'commands' | 'resp';
}

export const DEFAULT_MAX_ERRORS = 100;
export const DEFAULT_MAX_IN_FLIGHT = 8192;
export const DEFAULT_PROGRESS_INTERVAL = 250;

export function checkOptions(options: MassInsertOptions): Error | undefined {
  if (options === null || typeof options !== 'object') return new TypeError('massInsert: options must be an object');
  const known = ['replies', 'maxErrors', 'onProgress', 'progressInterval', 'maxInFlight', 'timeout', 'input'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) return new ConfigError(`massInsert: unknown option "${key}" (known: ${known.join(', ')})`);
  }
  const { replies, maxErrors, onProgress, progressInterval, maxInFlight, timeout, input } = options;
  if (replies !== undefined && replies !== 'on' && replies !== 'off') return new ConfigError(`massInsert: replies must be 'on' or 'off', got ${String(replies)}`);
  if (input !== undefined && input !== 'commands' && input !== 'resp') return new ConfigError(`massInsert: input must be 'commands' or 'resp', got ${String(input)}`);
  if (onProgress !== undefined && typeof onProgress !== 'function') return new ConfigError('massInsert: onProgress must be a function');
  const count = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (maxErrors !== undefined && !count(maxErrors)) return new ConfigError(`massInsert: maxErrors must be a non-negative integer, got ${String(maxErrors)}`);
  if (maxInFlight !== undefined && !(count(maxInFlight) && maxInFlight >= 2)) return new ConfigError(`massInsert: maxInFlight must be an integer >= 2, got ${String(maxInFlight)}`);
  if (progressInterval !== undefined && !(typeof progressInterval === 'number' && progressInterval >= 0)) return new ConfigError('massInsert: progressInterval must be a non-negative number of ms');
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout >= 0 && timeout <= MAX_TIMER_MS)) return new ConfigError(`massInsert: timeout must be a non-negative number of ms, at most ${MAX_TIMER_MS}`);
  return undefined;
}
