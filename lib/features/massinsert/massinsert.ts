/**
 * Mass insertion: `loop.massInsert(target, source, options)` writes a long stream of commands
 * as fast as the socket takes them, reads every reply without making a future per command,
 * and reports what failed, by command index.
 *
 * One shared sink object stands in the connection's FIFO for every command, so a command
 * costs its encoding and one FIFO slot, nothing more. The n-th settlement of that sink is the
 * n-th command that entered the FIFO; commands that never did (bad arguments, refused at
 * once) are remembered by index so failures can be mapped back to the source's numbering.
 *
 * Backpressure: the source is pulled only while fewer than `maxInFlight` replies are owed and
 * the target has room (`waitForRoom()`: its maxPending and maxBufferedBytes), so memory stays
 * flat however long the source is. When the promise resolves, every reply has been read: the
 * next command on the connection gets its own reply and the server holds none for it.
 *
 * On a cluster or shard set, each command's key is found with the router's command table
 * (RESP input is decoded just enough for that) and the command goes straight into the FIFO of
 * the master that owns the slot, with one shared sink per node (NodeTally) that maps its
 * settlements back to source indices. What a node sends back redirected (MOVED, ASK) or
 * never wrote is handed to the router, which follows it under a sink of its own. A command
 * without a key is a failure at its index, never a guess.
 */
import { randomBytes } from 'node:crypto';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { Connection } from '../../connection/connection.js';
import { kSubmitUnanswered } from '../../base/internal.js';
import type { EventLoop } from '../../core/eventloop.js';
import type { ReplySink } from '../../base/reply-sink.js';
import type { CommandTarget } from '../../connection/target.js';
import { encodeCommand, encodedLength, type Arg, type Encoded } from '../../protocol/encoder.js';
import { RespRequestFramer } from '../../protocol/requestframer.js';
import { forEachRequest } from '../../protocol/requestargs.js';
import { SlotRouter } from '../../routing/router.js';
import { currentConnection, isMovingTarget } from '../../connection/current.js';
import { Cluster } from '../../routing/cluster/cluster.js';
import { MAX_TIMER_MS } from '../../base/options.js';
import Denque from 'denque';
import {
  ClientStateError, isRedirect, isUnwritten, MassInsertError, ReplyError, RoutingError, TimeoutError,
  type MassInsertFailure, type MassInsertReport,
} from '../../base/errors.js';
export { MassInsertError, type MassInsertFailure, type MassInsertReport };
import { keySlot } from '../../routing/slot.js';

/** One command: its name then its arguments, e.g. ['SET', 'key', 'value']. */
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

const DEFAULT_MAX_ERRORS = 100;
const DEFAULT_MAX_IN_FLIGHT = 8192;
const DEFAULT_PROGRESS_INTERVAL = 250;
/**
 * Bytes encoded per turn before the loop flushes them and the socket takes them. Small turns
 * keep each batch's garbage young (cheap to collect); the in-flight window, not the turn,
 * keeps the server busy.
 */
const TURN_BYTES = 64 * 1024;
/**
 * A full window is refilled once this fraction of it is still owed: the server always has
 * most of a window queued (so a client that is briefly descheduled does not starve it),
 * and each refill is a small batch.
 */
const REFILL_AT = 7 / 8;

/** Written by hand: encodeCommand refuses it on purpose (the connection here is massInsert's own). */
const REPLY_OFF = '*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n';

/**
 * The one sink every command shares. `settled` stays false so that it keeps receiving;
 * settlements arrive in FIFO order, which is the order commands entered the FIFO.
 */
class Tally implements ReplySink {
  readonly command = 'massInsert';
  readonly returnBuffers: boolean;
  deadline = 0;
  readonly settled = false;
  /** FIFO entries settled: replies, and rejections of commands that were queued. */
  done = 0;
  replies = 0;
  errorCount = 0;
  readonly first: MassInsertFailure[] = [];
  /** Index of the command inside target.submit() right now, or -1. */
  submitting = -1;
  /** Set when the command being submitted was refused on the spot. */
  refused = false;

  /** Ascending indices of commands that never entered the FIFO. */
  private skips: number[] = [];
  private skipAt = 0;
  private skipsBefore = 0;

  private wakeAt = Infinity;
  private waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(returnBuffers: boolean, private readonly maxErrors: number) {
    this.returnBuffers = returnBuffers;
  }

  resolveReply(): void {
    this.replies++;
    if (++this.done >= this.wakeAt) this.wake();
  }

  rejectReply(err: Error): void {
    if (this.submitting !== -1) {
      // Refused inside submit() (e.g. a full offline queue): it never entered the FIFO.
      this.refused = true;
      this.skip(this.submitting, err);
      return;
    }
    if (err instanceof ReplyError) this.replies++;
    this.record(this.indexOf(this.done), err);
    if (++this.done >= this.wakeAt) this.wake();
  }

  /** A routed command's reply (each has its own IndexedReply, so the index comes with it). */
  rejectAt(index: number, err: Error): void {
    if (this.submitting === index) {
      this.refused = true; // refused inside submit(): never sent, nothing owed
      this.record(index, err);
      return;
    }
    if (err instanceof ReplyError) this.replies++;
    this.record(index, err);
    if (++this.done >= this.wakeAt) this.wake();
  }

  /** A routed command that was never sent (no key, cross-slot...): its index is known. */
  fail(index: number, err: Error): void {
    this.record(index, err);
  }

  /** A command that was not sent (bad arguments) or was refused. */
  skip(index: number, err: Error): void {
    this.skips.push(index);
    this.record(index, err);
  }

  /** The source index of the k-th FIFO entry (k only grows). */
  private indexOf(k: number): number {
    const s = this.skips;
    while (this.skipAt < s.length && s[this.skipAt]! <= k + this.skipsBefore) {
      this.skipAt++;
      this.skipsBefore++;
    }
    return k + this.skipsBefore;
  }

  /** Forgets skipped indices that every later settlement is past, so the list stays short. */
  compact(): void {
    if (this.skips.length === 0) return;
    this.indexOf(this.done);
    if (this.skipAt > 1024) {
      this.skips = this.skips.slice(this.skipAt);
      this.skipAt = 0;
    }
  }

  private record(index: number, err: Error): void {
    this.errorCount++;
    const list = this.first;
    const max = this.maxErrors;
    if (max === 0) return;
    if (list.length === max && index >= list[max - 1]!.index) return;
    const entry = { index, name: err.name, message: err.message };
    let i = list.length;
    while (i > 0 && list[i - 1]!.index > index) i--;
    list.splice(i, 0, entry);
    if (list.length > max) list.pop();
  }

  /** Resolves once `done` reaches `target`. */
  waitUntil(target: number): Promise<void> {
    if (this.done >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wakeAt = target;
    });
  }

  private wake(): void {
    this.wakeAt = Infinity;
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  /** Ends a wait with an error (timeout, connection gone). */
  abort(err: Error): void {
    this.wakeAt = Infinity;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }
}

/**
 * One per command on a cluster or shard set: its replies come from several connections, and a
 * redirected one comes late, so FIFO order says nothing about the index; the sink carries it.
 * Only the commands in flight have one (the window bounds them).
 */
class IndexedReply implements ReplySink {
  settled = false;
  deadline = 0;
  constructor(private readonly tally: Tally, private readonly index: number) {}
  get command(): string { return 'massInsert'; }
  get returnBuffers(): boolean { return this.tally.returnBuffers; }
  resolveReply(): void {
    if (this.settled) return;
    this.settled = true;
    this.tally.resolveReply();
  }
  rejectReply(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.tally.rejectAt(this.index, err);
  }
}

/**
 * One per node connection on a cluster or shard set: commands whose slot has a known owner go
 * straight into that connection's FIFO with this as their shared sink, so a command costs no
 * object of its own. Its FIFO entries settle in order, so a queue of source indices (and, on
 * a cluster, of slots and bytes, to send a redirected command again) maps each back.
 */
class NodeTally implements ReplySink {
  readonly command = 'massInsert';
  readonly returnBuffers: boolean;
  deadline = 0;
  readonly settled = false;
  /** index, then (cluster) slot and encoded, per command in this FIFO. */
  private readonly queue = new Denque<unknown>();

  constructor(private readonly tally: Tally, private readonly cluster: SlotRouter | undefined) {
    this.returnBuffers = tally.returnBuffers;
  }

  push(index: number, slot: number, encoded: Encoded): void {
    this.queue.push(index);
    if (this.cluster !== undefined) {
      this.queue.push(slot);
      this.queue.push(encoded);
    }
  }

  resolveReply(): void {
    const q = this.queue;
    q.shift();
    if (this.cluster !== undefined) { q.shift(); q.shift(); }
    this.tally.resolveReply();
  }

  rejectReply(err: Error): void {
    const q = this.queue;
    const index = q.shift() as number;
    const cluster = this.cluster;
    if (cluster !== undefined) {
      const slot = q.shift() as number;
      const encoded = q.shift() as Encoded;
      if (mustReroute(err)) {
        // The cluster sends it to the slot's owner and follows the redirection under its own sink.
        cluster.submitToSlot(slot, encoded, new IndexedReply(this.tally, index));
        return;
      }
    }
    this.tally.rejectAt(index, err);
  }
}

/** A reply or failure that means "not here": the cluster must send the command again. */
function mustReroute(err: Error): boolean {
  return isRedirect(err) || isUnwritten(err);
}

/**
 * replies: 'off' on a cluster or shard set. CLIENT REPLY is the state of one connection, and a
 * router's connections are shared (and it would follow replies that never come), so each
 * master gets a connection of massInsert's own, and commands are routed to them by slot here.
 */
class Lanes {
  private readonly own = new Map<Connection, Connection>();
  constructor(private readonly loop: EventLoop, private readonly router: SlotRouter) {}

  async open(): Promise<void> {
    for (const m of this.router.masterConnections) {
      this.own.set(m, this.loop.connect({ ...m.resolvedOptions, reconnect: false, readOnly: false }));
    }
    await Promise.all(this.connections.map((c) => this.loop.sendCommand(c, 'PING')));
    for (const c of this.connections) c[kSubmitUnanswered](REPLY_OFF);
  }

  /** massInsert's connection to the master of `key`; undefined if that master is new since the start. */
  laneFor(key: unknown): Connection | undefined {
    return this.own.get(this.router.connectionFor(key as string | Buffer));
  }

  get connections(): Connection[] {
    return [...this.own.values()];
  }
}

/** The source failed; wraps its error so it is not mistaken for ours. */
class SourceFailure {
  constructor(readonly error: Error) {}
}

function isByteStream(source: unknown): boolean {
  const s = source as { pipe?: unknown; on?: unknown; readableObjectMode?: boolean };
  return typeof s.pipe === 'function' && typeof s.on === 'function' && s.readableObjectMode !== true;
}

function describeCommand(cmd: unknown): string {
  if (!Array.isArray(cmd)) return `a command must be an array like ['SET', 'key', 'value'], got ${cmd === null ? 'null' : typeof cmd}`;
  if (cmd.length === 0) return 'a command must not be an empty array';
  return `the command name must be a non-empty string, got ${typeof cmd[0] === 'string' ? 'an empty string' : typeof cmd[0]}`;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

class MassInsert {
  private readonly tally: Tally;
  private readonly off: boolean;
  private readonly maxInFlight: number;
  private readonly started = performance.now();
  /** The connection commands are written on, when the target is one (always, with replies: 'off'). */
  private conn: Connection | undefined;
  /** Where commands go: the target, or the dedicated connection with replies: 'off'. */
  private dest: CommandTarget;
  /** The target when it is a cluster or shard set: commands are checked for a key, then routed. */
  private readonly router: SlotRouter | undefined;
  /** replies: 'off' on a router: massInsert's own connection per master. */
  private lanes: Lanes | undefined;
  /** Most replies owed at once (maxInFlight, times the masters of a router). */
  private window: number;
  /** Bytes encoded per turn: TURN_BYTES per connection, so each node's flush is as big as one connection's. */
  private turnLimit = TURN_BYTES;
  private statsAtStart: { moved: number; ask: number; tryAgain: number } | undefined;
  /** Replies on: the shared sink of each node connection commands went to. */
  private readonly nodeTallies = new Map<Connection, NodeTally>();
  /** The last node used, and its tally: consecutive commands often go to the same node. */
  private lastConn: Connection | undefined;
  private lastNodeTally: NodeTally | undefined;
  /** Commands handed to the target. */
  private sent = 0;
  /** Next source index. */
  private index = 0;
  /** Encoded bytes since the socket last had a chance to take them. */
  private turnBytes = 0;
  private framer: RespRequestFramer | undefined;
  private lastProgress = 0;
  private failure: Error | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly loop: EventLoop,
    private readonly target: CommandTarget,
    private readonly source: MassInsertSource,
    private readonly options: MassInsertOptions,
  ) {
    this.off = options.replies === 'off';
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.tally = new Tally(target.defaultReturnBuffers, options.maxErrors ?? DEFAULT_MAX_ERRORS);
    this.dest = target;
    this.conn = target instanceof Connection ? target : undefined;
    this.router = target instanceof SlotRouter ? target : undefined;
    this.window = this.maxInFlight;
  }

  async run(): Promise<MassInsertReport> {
    let stop: Error | undefined;
    let dedicated: Connection | undefined;
    try {
      if (this.router !== undefined) {
        // Keys are checked against the servers' command table before anything is sent.
        await this.router.whenReady();
        const masters = this.router.masterConnections.length;
        this.window = this.maxInFlight * Math.max(1, masters);
        this.turnLimit = TURN_BYTES * Math.max(1, masters);
        if (this.router instanceof Cluster) {
          const { moved, ask, tryAgain } = this.router.stats;
          this.statsAtStart = { moved, ask, tryAgain };
        }
        if (this.off) {
          this.lanes = new Lanes(this.loop, this.router);
          await this.lanes.open();
        }
      } else if (this.off) {
        dedicated = this.loop.connect({ ...(this.target as Connection).resolvedOptions, reconnect: false });
        this.conn = dedicated;
        this.dest = dedicated;
        await this.loop.sendCommand(dedicated, 'PING');
        dedicated[kSubmitUnanswered](REPLY_OFF);
      } else if (this.conn !== undefined && this.conn.state !== 'ready') {
        // Wait for the handshake here rather than fill the offline queue past its limit.
        await this.loop.sendCommand(this.conn, 'PING');
      }
    } catch (err) {
      dedicated?.disconnect();
      for (const c of this.lanes?.connections ?? []) c.disconnect();
      throw new MassInsertError(`massInsert: could not start: ${asError(err).message}`, this.report(), asError(err));
    }

    this.armTimeout();
    try {
      const useResp = this.options.input === 'resp' || (this.options.input === undefined && isByteStream(this.source));
      if (useResp) await this.pumpResp(this.source as AsyncIterable<Uint8Array | string>);
      else if (typeof (this.source as Iterable<unknown>)[Symbol.iterator] === 'function') await this.pumpSync(this.source as Iterable<unknown>);
      else await this.pumpAsync(this.source as AsyncIterable<unknown>);
    } catch (err) {
      stop = err instanceof SourceFailure ? err.error : asError(err);
    }
    try {
      if (this.failure === undefined) await this.finish();
    } catch (err) {
      stop ??= asError(err);
    } finally {
      clearInterval(this.timer);
      for (const own of dedicated !== undefined ? [dedicated] : this.lanes?.connections ?? []) {
        if (this.failure === undefined) await own.close();
        else own.disconnect();
      }
    }
    stop ??= this.failure;
    this.progress(true);
    const report = this.report();
    if (stop !== undefined) {
      throw new MassInsertError(`massInsert stopped after ${report.sent} command(s): ${stop.message}`, report, stop);
    }
    return report;
  }

  private report(): MassInsertReport {
    const t = this.tally;
    const r: MassInsertReport = {
      sent: this.sent,
      replies: t.replies,
      errors: { count: t.errorCount, first: t.first.slice() },
      elapsedMs: performance.now() - this.started,
      replyMode: this.off ? 'off' : 'on',
    };
    if (this.framer !== undefined) r.bytesIn = this.framer.bytesIn;
    const before = this.statsAtStart;
    if (before !== undefined) {
      const now = (this.target as Cluster).stats;
      r.redirections = { moved: now.moved - before.moved, ask: now.ask - before.ask, tryAgain: now.tryAgain - before.tryAgain };
    }
    return r;
  }

  // ---------------------------------------------------------------- sources

  // pumpSync and pumpAsync differ only in `await it.next()`: kept apart so that a plain
  // iterable (a generator of 5M commands) costs no microtask per command.
  private async pumpSync(source: Iterable<unknown>): Promise<void> {
    let it: Iterator<unknown>;
    try {
      it = source[Symbol.iterator]();
    } catch (err) {
      throw new SourceFailure(asError(err));
    }
    let ok = false;
    try {
      for (;;) {
        while (this.hasRoomThisTurn()) {
          let r: IteratorResult<unknown>;
          try {
            r = it.next();
          } catch (err) {
            throw new SourceFailure(asError(err));
          }
          if (r.done === true) { ok = true; return; }
          this.send(r.value);
        }
        await this.nextTurn();
      }
    } finally {
      if (!ok) closeIterator(it);
    }
  }

  private async pumpAsync(source: AsyncIterable<unknown>): Promise<void> {
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
        while (this.hasRoomThisTurn()) {
          let r: IteratorResult<unknown>;
          try {
            r = await it.next();
          } catch (err) {
            throw new SourceFailure(asError(err));
          }
          if (r.done === true) { ok = true; return; }
          this.send(r.value);
        }
        await this.nextTurn();
      }
    } finally {
      if (!ok) await closeAsyncIterator(it);
    }
  }

  /** RESP bytes: framed into whole commands and written as they came, never re-encoded. */
  private async pumpResp(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): Promise<void> {
    const framer = this.framer = new RespRequestFramer();
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
        if (batch !== undefined) await this.sendRaw(batch.bytes, batch.count);
        if (framer.error !== undefined) throw new SourceFailure(framer.error);
        if (!this.hasRoomThisTurn()) await this.nextTurn();
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

  // ---------------------------------------------------------------- sending

  private send(cmd: unknown): void {
    const index = this.index++;
    const tally = this.tally;
    if (!Array.isArray(cmd) || cmd.length === 0 || typeof cmd[0] !== 'string' || cmd[0].length === 0) {
      tally.skip(index, new TypeError(`command ${index}: ${describeCommand(cmd)}`));
      return;
    }
    const name = cmd[0] as string;
    const encoded = encodeCommand(name, cmd, 1);
    if (typeof encoded !== 'string' && !Array.isArray(encoded)) {
      tally.skip(index, encoded);
      return;
    }
    this.turnBytes += typeof encoded === 'string' ? encoded.length : encodedLength(encoded);
    if (this.router !== undefined) {
      this.sendRouted(index, name, cmd, 1, encoded);
      return;
    }
    if (this.off) {
      this.conn![kSubmitUnanswered](encoded);
      this.sent++;
      return;
    }
    tally.submitting = index;
    this.dest.submit(encoded, tally, name, cmd, 1);
    tally.submitting = -1;
    if (tally.refused) tally.refused = false;
    else this.sent++;
  }

  /**
   * `count` whole commands in `bytes`. The first FIFO entry carries the bytes, the others an
   * empty string: one write, one FIFO slot per reply. This relies on all of them going to the
   * socket in the same flush, and on none being refused: so RESP input needs a Connection
   * target, and a batch is only submitted while it is ready (its submit() then never refuses).
   */
  private async sendRaw(bytes: Buffer, count: number): Promise<void> {
    if (this.router !== undefined) {
      // Each command goes to its own node: decoded just enough to find its key, sent as it came.
      this.turnBytes += bytes.length;
      forEachRequest(bytes, count, this.sendRawRouted);
      return;
    }
    const conn = this.conn!;
    if (conn.state !== 'ready') await this.loop.sendCommand(conn, 'PING');
    this.turnBytes += bytes.length;
    if (this.off) {
      conn[kSubmitUnanswered]([bytes]);
      this.index += count;
      this.sent += count;
      return;
    }
    const tally = this.tally;
    const first: Encoded = [bytes];
    let refused = 0;
    for (let i = 0; i < count; i++) {
      const index = this.index++;
      tally.submitting = index;
      conn.submit(i === 0 ? first : '', tally);
      tally.submitting = -1;
      if (tally.refused) { tally.refused = false; refused++; } else this.sent++;
    }
    if (refused !== 0 && refused !== count) {
      // Some replies would have no FIFO entry: the connection cannot be trusted any more.
      conn.disconnect('massInsert: a RESP batch was only partly accepted');
      throw new ClientStateError(`connection to ${conn.address} refused part of a batch of RESP commands; it was disconnected`);
    }
  }

  private readonly sendRawRouted = (command: Buffer, args: Buffer[]): void => {
    this.sendRouted(this.index++, args[0]!.toString('latin1'), args, 1, [command]);
  };

  /**
   * A command for a cluster or shard set. One without a key (or whose keys span slots where
   * the command cannot be split) is an error at its index: sending it to some node would be a
   * guess. The router finds the node, and on a cluster follows MOVED / ASK under the sink.
   */
  private sendRouted(index: number, name: string, args: ArrayLike<unknown>, from: number, encoded: Encoded): void {
    const router = this.router!;
    const tally = this.tally;
    const key = router.keyOf(name, args, from);
    if (typeof key !== 'number') {
      tally.fail(index, key);
      return;
    }
    const lanes = this.lanes;
    if (lanes !== undefined) {
      const lane = key >= 0 ? lanes.laneFor(args[key]) : undefined;
      if (lane === undefined) {
        tally.fail(index, new RoutingError(key < 0
          ? `${name}: its keys span slots; with replies: 'off' a command is not split, send one command per slot`
          : `${name}: the slot of its key moved to a master that was not in the cluster when the load began; with replies: 'off' it cannot be followed`));
        return;
      }
      lane[kSubmitUnanswered](encoded);
      this.sent++;
      return;
    }
    if (key >= 0) {
      const slot = keySlot(args[key]);
      const conn = router.connectionForSlot(slot);
      if (conn !== undefined) {
        let node = conn === this.lastConn ? this.lastNodeTally! : this.nodeTallies.get(conn);
        if (node === undefined) {
          node = new NodeTally(tally, router instanceof Cluster ? router : undefined);
          this.nodeTallies.set(conn, node);
        }
        this.lastConn = conn;
        this.lastNodeTally = node;
        node.push(index, slot, encoded);
        tally.submitting = index;
        conn.submit(encoded, node);
        tally.submitting = -1;
        if (tally.refused) tally.refused = false;
        else this.sent++;
        return;
      }
    }
    // Split across slots, or no owner known yet: the router's own way, with a sink per command.
    tally.submitting = index;
    router.submit(encoded, new IndexedReply(tally, index), name, args, from);
    tally.submitting = -1;
    if (tally.refused) tally.refused = false;
    else this.sent++;
  }

  // ---------------------------------------------------------------- backpressure

  private hasRoomThisTurn(): boolean {
    return this.turnBytes < this.turnLimit && (this.off || this.sent - this.tally.done < this.window);
  }

  /**
   * Lets the loop flush what was queued and the socket take it, then waits until there is
   * room: 1/8 of a full in-flight window answered, and the target under its own limits.
   */
  private async nextTurn(): Promise<void> {
    const tally = this.tally;
    if (!this.off && this.sent - tally.done >= this.window) {
      await tally.waitUntil(this.sent - Math.floor(this.window * REFILL_AT));
    } else {
      await nextMacrotask();
    }
    this.turnBytes = 0;
    if (this.failure !== undefined) throw this.failure;
    const conn = this.conn;
    if (conn !== undefined && conn.state === 'closed') {
      throw new ClientStateError(`connection to ${conn.address} is closed`);
    }
    for (const lane of this.lanes?.connections ?? []) {
      if (lane.state === 'closed') throw new ClientStateError(`connection to ${lane.address} is closed`);
    }
    await this.dest.waitForRoom();
    tally.compact();
    this.progress(false);
  }

  /** Waits for every reply (replies: 'on') or for the marker after CLIENT REPLY ON ('off'). */
  private async finish(): Promise<void> {
    if (!this.off) {
      await this.tally.waitUntil(this.sent);
      return;
    }
    await Promise.all(this.lanes !== undefined ? this.lanes.connections.map((c) => this.replyOn(c)) : [this.replyOn(this.conn!)]);
  }

  /** CLIENT REPLY ON then an ECHO marker: when its reply comes, the server has run everything before. */
  private async replyOn(conn: Connection): Promise<void> {
    const marker = `redloop-massinsert-${randomBytes(8).toString('hex')}`;
    const timeout = this.options.timeout ?? 0;
    const on = this.loop.send(conn, ['CLIENT', 'REPLY', 'ON'], timeout > 0 ? { timeout } : undefined);
    const echo = this.loop.send(conn, ['ECHO', marker], timeout > 0 ? { timeout } : undefined);
    const [onReply, echoReply] = await Promise.all([on, echo]);
    if (onReply !== 'OK' || echoReply !== marker) {
      throw new ClientStateError(`massInsert: expected OK and the marker after CLIENT REPLY ON, got ${JSON.stringify([onReply, echoReply])}`);
    }
  }

  private armTimeout(): void {
    const timeout = this.options.timeout ?? 0;
    if (this.off || !(timeout > 0)) return;
    let seen = -1;
    this.timer = setInterval(() => {
      const t = this.tally;
      const owed = this.sent - t.done;
      if (owed > 0 && t.done === seen) {
        this.failure = new TimeoutError(`no reply for ${timeout}ms while ${owed} were owed; late replies will be read and dropped`);
        t.abort(this.failure);
      }
      seen = t.done;
    }, timeout);
    this.timer.unref();
  }

  private progress(last: boolean): void {
    const cb = this.options.onProgress;
    if (cb === undefined) return;
    const now = performance.now();
    if (!last && now - this.lastProgress < (this.options.progressInterval ?? DEFAULT_PROGRESS_INTERVAL)) return;
    this.lastProgress = now;
    const p: MassInsertProgress = { sent: this.sent, replies: this.tally.replies, errors: this.tally.errorCount, elapsedMs: now - this.started };
    if (this.framer !== undefined) p.bytesIn = this.framer.bytesIn;
    cb(p);
  }
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

function checkOptions(options: MassInsertOptions): Error | undefined {
  if (options === null || typeof options !== 'object') return new TypeError('massInsert: options must be an object');
  const known = ['replies', 'maxErrors', 'onProgress', 'progressInterval', 'maxInFlight', 'timeout', 'input'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) return new TypeError(`massInsert: unknown option "${key}" (known: ${known.join(', ')})`);
  }
  const { replies, maxErrors, onProgress, progressInterval, maxInFlight, timeout, input } = options;
  if (replies !== undefined && replies !== 'on' && replies !== 'off') return new TypeError(`massInsert: replies must be 'on' or 'off', got ${String(replies)}`);
  if (input !== undefined && input !== 'commands' && input !== 'resp') return new TypeError(`massInsert: input must be 'commands' or 'resp', got ${String(input)}`);
  if (onProgress !== undefined && typeof onProgress !== 'function') return new TypeError('massInsert: onProgress must be a function');
  const count = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (maxErrors !== undefined && !count(maxErrors)) return new TypeError(`massInsert: maxErrors must be a non-negative integer, got ${String(maxErrors)}`);
  if (maxInFlight !== undefined && !(count(maxInFlight) && maxInFlight >= 2)) return new TypeError(`massInsert: maxInFlight must be an integer >= 2, got ${String(maxInFlight)}`);
  if (progressInterval !== undefined && !(typeof progressInterval === 'number' && progressInterval >= 0)) return new TypeError('massInsert: progressInterval must be a non-negative number of ms');
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout >= 0 && timeout <= MAX_TIMER_MS)) return new TypeError(`massInsert: timeout must be a non-negative number of ms, at most ${MAX_TIMER_MS}`);
  return undefined;
}

/** The implementation behind `loop.massInsert()`. */
export async function massInsert(
  loop: EventLoop,
  target: CommandTarget,
  source: MassInsertSource,
  options: MassInsertOptions = {},
): Promise<MassInsertReport> {
  const bad = checkOptions(options);
  if (bad !== undefined) throw bad;
  if (target === null || typeof target !== 'object' || typeof target.submit !== 'function') {
    throw new TypeError(`massInsert: target must be a Connection from loop.connect() (or a cluster/shard set), got ${target === null ? 'null' : typeof target}`);
  }
  if (target.loop !== loop) throw new TypeError('massInsert: target belongs to another EventLoop');
  // A sentinel target: the load goes to the master of the moment, on its connection.
  if (isMovingTarget(target)) target = await target[currentConnection]();
  if (!(target instanceof Connection) && !(target instanceof SlotRouter)) {
    if (options.input === 'resp' || (options.input === undefined && isByteStream(source))) {
      throw new TypeError('massInsert: RESP input needs a Connection, a cluster or a shard set as target');
    }
    if (options.replies === 'off') {
      throw new TypeError("massInsert: replies: 'off' needs a Connection, a cluster or a shard set (it opens connections of its own with the same options)");
    }
  }
  if (source === null || (typeof source !== 'object' && typeof source !== 'function') || typeof source === 'string') {
    throw new TypeError('massInsert: the source must be an iterable, an async iterable or a readable stream');
  }
  return new MassInsert(loop, target, source, options).run();
}
