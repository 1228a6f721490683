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
 *
 * Here: the run (backpressure, sending, finishing); options.ts, tally.ts, sources.ts and
 * lanes.ts hold the rest.
 */
import { randomBytes } from 'node:crypto';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { Connection } from '../../connection/connection.js';
import { kKeyOf, kSubmitUnanswered } from '../../base/internal.js';
import type { EventLoop } from '../../core/eventloop.js';
import type { CommandTarget } from '../../connection/target.js';
import { encodeCommand, encodedLength, type Encoded } from '../../protocol/encoder.js';
import { RespRequestFramer } from '../../protocol/requestframer.js';
import { forEachRequest } from '../../protocol/requestargs.js';
import { Cluster } from '../../routing/cluster/cluster.js';
import { assertTarget, openLike, targetKind, type Router } from '../../routing/targets.js';
import { currentConnection, isMovingTarget } from '../../connection/current.js';
import { ClientStateError, RoutingError, TimeoutError } from '../../base/errors.js';
import { keySlot } from '../../routing/slot.js';
import {
  checkOptions, DEFAULT_MAX_ERRORS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_PROGRESS_INTERVAL, MassInsertError,
  type MassInsertOptions, type MassInsertProgress, type MassInsertReport, type MassInsertSource,
} from './options.js';
import { IndexedReply, NodeTally, Tally } from './tally.js';
import { Lanes, REPLY_OFF } from './lanes.js';
import { asError, isByteStream, pumpAsync, pumpResp, pumpSync, SourceFailure, type Feed } from './sources.js';

export { MassInsertError } from './options.js';
export type {
  MassInsertCommand, MassInsertFailure, MassInsertOptions, MassInsertProgress, MassInsertReport, MassInsertSource,
} from './options.js';

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

function describeCommand(cmd: unknown): string {
  if (!Array.isArray(cmd)) return `a command must be an array like ['SET', 'key', 'value'], got ${cmd === null ? 'null' : typeof cmd}`;
  if (cmd.length === 0) return 'a command must not be an empty array';
  return `the command name must be a non-empty string, got ${typeof cmd[0] === 'string' ? 'an empty string' : typeof cmd[0]}`;
}

class MassInsert implements Feed {
  private readonly tally: Tally;
  private readonly off: boolean;
  private readonly maxInFlight: number;
  private readonly started = performance.now();
  /** The connection commands are written on, when the target is one (always, with replies: 'off'). */
  private conn: Connection | undefined;
  /** Where commands go: the target, or the dedicated connection with replies: 'off'. */
  private dest: CommandTarget;
  /** The target when it is a cluster or shard set: commands are checked for a key, then routed. */
  private readonly router: Router | undefined;
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
    const kind = targetKind(target);
    this.conn = kind === 'connection' ? target as Connection : undefined;
    this.router = kind === 'cluster' || kind === 'shards' ? target as Router : undefined;
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
        if (this.router instanceof Cluster) { // redirections are a cluster's
          const { moved, ask, tryAgain } = this.router.stats;
          this.statsAtStart = { moved, ask, tryAgain };
        }
        if (this.off) {
          this.lanes = new Lanes(this.loop, this.router);
          await this.lanes.open();
        }
      } else if (this.off) {
        dedicated = openLike(this.target as Connection, { reconnect: false, cache: false });
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
      if (useResp) await pumpResp(this.source as AsyncIterable<Uint8Array | string>, this, this.framer = new RespRequestFramer());
      else if (typeof (this.source as Iterable<unknown>)[Symbol.iterator] === 'function') await pumpSync(this.source as Iterable<unknown>, this);
      else await pumpAsync(this.source as AsyncIterable<unknown>, this);
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

  // ---------------------------------------------------------------- sending

  send(cmd: unknown): void {
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
  async sendRaw(bytes: Buffer, count: number): Promise<void> {
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
    const key = router[kKeyOf](name, args, from);
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

  hasRoomThisTurn(): boolean {
    return this.turnBytes < this.turnLimit && (this.off || this.sent - this.tally.done < this.window);
  }

  /**
   * Lets the loop flush what was queued and the socket take it, then waits until there is
   * room: 1/8 of a full in-flight window answered, and the target under its own limits.
   */
  async nextTurn(): Promise<void> {
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

/** The implementation behind `loop.massInsert()`. */
export async function massInsert(
  loop: EventLoop,
  target: CommandTarget,
  source: MassInsertSource,
  options: MassInsertOptions = {},
): Promise<MassInsertReport> {
  const bad = checkOptions(options);
  if (bad !== undefined) throw bad;
  assertTarget(target, loop, 'massInsert');
  // A sentinel target: the load goes to the master of the moment, on its connection.
  if (isMovingTarget(target)) target = await target[currentConnection]();
  if (targetKind(target) === 'other') {
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
