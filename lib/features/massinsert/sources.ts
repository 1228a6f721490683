/**
 * Reading a massInsert source: argument arrays from an iterable, an async iterable or an
 * object-mode stream, or RESP bytes framed into whole commands. A source is pulled only while
 * the run has room (feed.hasRoomThisTurn); a failing source is wrapped in SourceFailure so its
 * error is reported as the cause, not mistaken for the run's own.
 */
import { RespRequestFramer } from '../../protocol/requestframer.js';

/** What a source is pulled into: the run. */
export interface Feed {
  /** Room for another command before the run must let the socket take what was written. */
  hasRoomThisTurn(): boolean;
  /** Lets the loop flush and waits for room. */
  nextTurn(): Promise<void>;
  /** One command (an argument array, checked there). */
  send(cmd: unknown): void;
  /** `count` whole RESP commands in `bytes`. */
  sendRaw(bytes: Buffer, count: number): Promise<void>;
}

/** The source failed; wraps its error so it is not mistaken for ours. */
export class SourceFailure {
  constructor(readonly error: Error) {}
}

export function isByteStream(source: unknown): boolean {
  const s = source as { pipe?: unknown; on?: unknown; readableObjectMode?: boolean };
  return typeof s.pipe === 'function' && typeof s.on === 'function' && s.readableObjectMode !== true;
}

export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function closeIterator(it: Iterator<unknown>): void {
  try {
    it.return?.();
  } catch { /* the first error is the one reported */ }
}

async function closeAsyncIterator(it: AsyncIterator<unknown>): Promise<void> {
  try {
    await it.return?.();
  } catch { /* the first error is the one reported */ }
}

// pumpSync and pumpAsync differ only in `await it.next()`: kept apart so that a plain
// iterable (a generator of 5M commands) costs no microtask per command.
export async function pumpSync(source: Iterable<unknown>, feed: Feed): Promise<void> {
  let it: Iterator<unknown>;
  try {
    it = source[Symbol.iterator]();
  } catch (err) {
    throw new SourceFailure(asError(err));
  }
  let ok = false;
  try {
    for (;;) {
      while (feed.hasRoomThisTurn()) {
        let r: IteratorResult<unknown>;
        try {
          r = it.next();
        } catch (err) {
          throw new SourceFailure(asError(err));
        }
        if (r.done === true) { ok = true; return; }
        feed.send(r.value);
      }
      await feed.nextTurn();
    }
  } finally {
    if (!ok) closeIterator(it);
  }
}

export async function pumpAsync(source: AsyncIterable<unknown>, feed: Feed): Promise<void> {
  if (source === null || typeof source !== 'object' || typeof source[Symbol.asyncIterator] !== 'function') {
    throw new TypeError('massInsert: the source must be an iterable, an async iterable or a readable stream of commands');
  }
  let it: AsyncIterator<unknown>;
  try {
    it = source[Symbol.asyncIterator]();
  } catch (err) {
    throw new SourceFailure(asError(err));
  }
  let ok = false;
  try {
    for (;;) {
      while (feed.hasRoomThisTurn()) {
        let r: IteratorResult<unknown>;
        try {
          r = await it.next();
        } catch (err) {
          throw new SourceFailure(asError(err));
        }
        if (r.done === true) { ok = true; return; }
        feed.send(r.value);
      }
      await feed.nextTurn();
    }
  } finally {
    if (!ok) await closeAsyncIterator(it);
  }
}

/** RESP bytes: framed into whole commands and written as they came, never re-encoded. */
export async function pumpResp(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, feed: Feed, framer: RespRequestFramer): Promise<void> {
  const asyncIt = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator];
  const it: AsyncIterator<Uint8Array | string> | Iterator<Uint8Array | string> = typeof asyncIt === 'function'
    ? (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]()
    : (source as Iterable<Uint8Array | string>)[Symbol.iterator]();
  let ok = false;
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array | string>;
      try {
        r = await it.next();
      } catch (err) {
        throw new SourceFailure(asError(err));
      }
      if (r.done === true) break;
      const v = r.value;
      const chunk = typeof v === 'string' ? Buffer.from(v, 'latin1')
        : Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : undefined;
      if (chunk === undefined) throw new SourceFailure(new TypeError(`massInsert: RESP input must be Buffers or strings, got ${typeof v}`));
      let batch;
      try {
        batch = framer.push(chunk);
      } catch (err) {
        throw new SourceFailure(asError(err));
      }
      if (batch !== undefined) await feed.sendRaw(batch.bytes, batch.count);
      if (framer.error !== undefined) throw new SourceFailure(framer.error);
      if (!feed.hasRoomThisTurn()) await feed.nextTurn();
    }
    try {
      framer.end();
    } catch (err) {
      throw new SourceFailure(asError(err));
    }
    ok = true;
  } finally {
    if (!ok) {
      if ('return' in it && typeof it.return === 'function') {
        try { await it.return(); } catch { /* the stream's own error is already the cause */ }
      }
    }
  }
}
