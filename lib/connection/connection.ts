/**
 * Connection: one socket to one Redis server, its lifecycle (connect, handshake, reconnect,
 * close), the offline queue while it is not ready, and backpressure. The reply queue
 * (reply-queue.ts: the n-th reply belongs to the n-th command), the write buffer
 * (write-buffer.ts: one write per tick, long runs in slices) and the handshake steps
 * (handshake.ts) are pieces of their own; this file wires them to the socket.
 */
import net from 'node:net';
import tls from 'node:tls';
import { inspect } from 'node:util';
import Denque from 'denque';
import { encodeCommand, type Encoded } from '../protocol/encoder.js';
import type { ReplyDecoder } from '../protocol/decoder.js';
import type { ReplySink } from '../base/reply-sink.js';
import { CallbackSink } from './callback-sink.js';
import {
  AuthError, ClientStateError, ConnectionClosedError, ProtocolError, ReplyError, TimeoutError,
} from '../base/errors.js';
import { backoffDelay, type ResolvedOptions } from '../base/options.js';
import type { CommandTarget } from './target.js';
import type { CacheControl } from '../base/cache-options.js';
import { warnUnheardError } from '../base/warnings.js';
import { ReplyQueue, type PushHandler, type PushListener } from './reply-queue.js';
import {
  connectChannel, connectEnded, connectStarted, reconnectChannel, reconnectScheduled, tracedWrite, writeObserved,
} from './tracing.js';
import type { ConnectMessage } from '../base/channels.js';
import { WriteBuffer } from './write-buffer.js';
import { handshakeFailure, handshakeSteps, helloRefused } from './handshake.js';
import { kAddPushListener, kCommandTimedOut, kFlush, kScheduleFlush, kSetPushHandler, kSetReading, kSubmitUnanswered, kWriteNow } from '../base/internal.js';

export type { PushHandler, PushListener } from './reply-queue.js';

export interface ReconnectingInfo {
  attempt: number;
  delay: number;
  error: Error;
}

/** What a connection tells the loop that owns it (the loop's events of the same names). */
export interface ConnectionEvents {
  connect: (conn: Connection) => void;
  ready: (conn: Connection) => void;
  error: (err: Error, conn: Connection) => void;
  close: (conn: Connection, reason: Error) => void;
  reconnecting: (info: ReconnectingInfo, conn: Connection) => void;
  /** The connection is closed for good. */
  end: (conn: Connection) => void;
}

/** What a connection needs from the loop that owns it (the EventLoop, without importing it). */
export interface ConnectionOwner {
  /** Flush this connection at the end of the current tick (with every other dirty one). */
  [kScheduleFlush](conn: Connection): void;
  emit(event: 'connect' | 'ready' | 'end', conn: Connection): boolean;
  emit(event: 'error', err: Error, conn: Connection): boolean;
  emit(event: 'close', conn: Connection, reason: Error): boolean;
  emit(event: 'reconnecting', info: ReconnectingInfo, conn: Connection): boolean;
}

/**
 * The lifecycle of one connection, for the layer that opened it (a cluster's node, a
 * subscription's own connection): told of its own connection only, right after the loop's
 * event of the same name, instead of listening to every connection of the loop.
 */
export interface ConnectionObserver {
  onReady?(conn: Connection): void;
  onClose?(conn: Connection, reason: Error): void;
  /** Closed for good. */
  onEnd?(conn: Connection): void;
}

export type ConnectionState =
  | 'connecting' // socket opening
  | 'handshake' // HELLO / AUTH / SELECT / SETNAME in flight
  | 'ready'
  | 'reconnecting' // waiting for the backoff timer
  | 'closed'; // for good: close(), disconnect(), auth failure or reconnects exhausted

export interface ConnectionStats {
  /** Commands written to the socket (handshake excluded). */
  commandsSent: number;
  /** Replies read (handshake excluded). */
  repliesReceived: number;
  /** Replies still owed by the server for written commands. */
  pending: number;
  /** Commands waiting for the connection to be ready. */
  offlineQueued: number;
  /** Batches flushed to the socket: one per tick that had commands to send. */
  writes: number;
  /** Bytes handed to the socket, over every reconnect. */
  bytesWritten: number;
  /** Bytes the socket has not yet passed to the kernel. */
  bytesBuffered: number;
  /** Successful reconnects. */
  reconnects: number;
}

interface QueuedCommand {
  encoded: Encoded;
  sink: ReplySink;
}

let nextId = 1;

export class Connection implements CommandTarget {
  readonly id = nextId++;
  /** Where this connection points, without credentials: "127.0.0.1:6379/0" or a socket path. */
  readonly address: string;
  private readonly options: ResolvedOptions;
  private readonly owner: ConnectionOwner;
  /** The EventLoop this connection belongs to. */
  readonly loop: unknown;
  /** The client-side cache of this connection's server (`cache` option), else undefined. See docs/cache.md. */
  declare readonly cache: CacheControl | undefined;

  private socket: net.Socket | undefined;
  private _state: ConnectionState = 'connecting';
  private readonly decoder: ReplyDecoder;

  /** Sinks of written (or being written this tick) commands, oldest first. */
  private readonly replies: ReplyQueue;
  /** Encoded commands waiting for the end-of-tick flush; their sinks are the tail of `replies`. */
  private readonly writes = new WriteBuffer();
  private flushScheduled = false;
  /** Commands queued while the connection is not ready. */
  private readonly offline = new Denque<QueuedCommand>();
  private sweepTimer: NodeJS.Timeout | undefined;

  private connectTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Consecutive failed connection attempts. */
  private attempts = 0;
  /** Once reconnects have failed `failQueuedAfter` times, new commands fail fast. */
  private failFast = false;
  /** Why the current socket is going away (decides how in-flight commands are rejected). */
  private dropReason: Error | undefined;
  /** Set when the connection is closed for good; later commands reject with it. */
  private fatal: Error | undefined;

  private closing = false;
  private quitSent = false;
  private closeWaiters: Array<() => void> = [];
  private drainWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  /**
   * Whether the socket and timers keep the process alive: while the first connection is being
   * made (until it is ready, or until failQueuedAfter attempts have failed), and after that only
   * while there is work (commands queued, being written or owed a reply). An idle connection
   * lets the process exit, like http.Agent's idle keep-alive sockets: a program that forgets
   * close() ends, and reconnects to a server that is gone do not hold it forever.
   */
  private holding = true;

  private counters = { bytesWritten: 0, reconnects: 0 };
  private everReady = false;
  private drainListening = false;
  /** This socket's HELLO 3 was refused: the handshake is done again in RESP2. */
  private helloRefused = false;

  /** The attempt being made, while redloop:connect has subscribers. */
  private connectTrace: ConnectMessage | undefined;

  /** Told of this connection's lifecycle (the layer that opened it), if any. */
  private readonly observer: ConnectionObserver | undefined;

  /** @internal Connections are opened by loop.connect() (or by a layer, through the loop). */
  constructor(owner: ConnectionOwner, options: ResolvedOptions, observer?: ConnectionObserver) {
    this.owner = owner;
    this.observer = observer;
    this.loop = owner;
    this.options = options;
    this.address = options.path ?? `${options.host}:${options.port}/${options.db}`;
    this.replies = new ReplyQueue({
      onEmpty: () => this.releaseIfIdle(),
      onBroken: (err) => this.drop(err),
    }, this.address, options.returnBuffers, options.bigInt, options.resp3);
    this.replies.pushSource = this;
    this.decoder = this.replies.decoder;
    this.open();
  }

  /**
   * The RESP version replies come in: 3 once HELLO 3 is answered (the default), 2 before, with
   * `protocol: 2`, or on a server that does not know HELLO (Redis < 6).
   */
  get protocol(): 2 | 3 {
    return this.replies.resp3Replies ? 3 : 2;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Replies still owed for written commands (including timed-out ones not yet read). */
  get pendingReplies(): number {
    return this.replies.length;
  }

  /**
   * Bytes queued in this tick plus bytes the socket has buffered. This tick's commands are
   * counted here (in UTF-16 units for strings, close to bytes for ASCII), not on the hot path.
   */
  get bufferedBytes(): number {
    return this.writes.bufferedBytes;
  }

  get stats(): ConnectionStats {
    const written = this.socket?.bytesWritten ?? 0;
    return {
      commandsSent: this.writes.commandsSent,
      repliesReceived: this.replies.received,
      writes: this.writes.writes,
      pending: this.replies.length,
      offlineQueued: this.offline.length,
      bytesWritten: this.counters.bytesWritten + written,
      bytesBuffered: this.bufferedBytes,
      reconnects: this.counters.reconnects,
    };
  }

  /** The command timeout that applies to commands sent without their own. */
  get commandTimeout(): number {
    return this.options.commandTimeout;
  }

  get defaultReturnBuffers(): boolean {
    return this.options.returnBuffers;
  }

  /** The options this connection was opened with (a copy), to open another one like it. */
  get resolvedOptions(): ResolvedOptions {
    return { ...this.options };
  }

  // ---------------------------------------------------------------- sending

  /**
   * Queues one encoded command. Written at the end of this tick if the connection is ready,
   * else kept in the offline queue (or rejected when there is no room or no hope).
   */
  submit(encoded: Encoded, sink: ReplySink): void {
    // Connections are the end of routing: every target resolves to one of these.
    if (this._state === 'ready' && !this.closing) {
      this.writeLater(encoded, sink);
    } else {
      this.queueOffline(encoded, sink);
    }
    if (sink.deadline !== 0 && this.sweepTimer === undefined) this.armSweep(sink.deadline);
  }

  /**
   * Writes a command the server will not answer (while CLIENT REPLY OFF/SKIP is in force),
   * in order with everything else, with no FIFO entry. Only on a ready connection that no
   * one else sends on: a reply the server does send would be handed to the wrong command.
   */
  [kSubmitUnanswered](encoded: Encoded): void {
    if (this._state !== 'ready' || this.closing) {
      throw new ClientStateError(`connection to ${this.address} is not ready (${this._state}); unanswered commands need a ready connection`);
    }
    if (this.writes.addUnanswered(encoded, this.replies.length)) this.writeQueued();
    if (!this.holding) this.hold();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.owner[kScheduleFlush](this);
    }
  }

  private writeLater(encoded: Encoded, sink: ReplySink): void {
    const replies = this.replies;
    // The sink first: the sinks of what the write buffer holds are always the tail of the queue.
    replies.push(sink);
    if (this.writes.add(encoded, replies.length - 1)) this.writeQueued();
    if (!this.holding) this.hold();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.owner[kScheduleFlush](this);
    }
  }

  private queueOffline(encoded: Encoded, sink: ReplySink): void {
    const refusal = this.offlineRefusal(sink.command);
    if (refusal !== undefined) {
      sink.rejectReply(refusal);
      return;
    }
    this.offline.push({ encoded, sink });
    if (!this.holding) this.hold();
  }

  /**
   * Why a command cannot wait for the connection, if it cannot. Not connected (offline queue
   * off, or failing fast while reconnects fail) is a ConnectionClosedError with written:
   * false, safe to retry; closed or full is a ClientStateError; a bad password its AuthError.
   */
  private offlineRefusal(command: string): Error | undefined {
    const fatal = this.fatal;
    if (fatal !== undefined) return fatal instanceof AuthError ? fatal : new ClientStateError(`${command}: ${fatal.message}`);
    if (this.closing) return new ClientStateError(`${command}: connection to ${this.address} is closing`);
    if (!this.options.offlineQueue) {
      return new ConnectionClosedError(`connection to ${this.address} is not ready (${this._state}) and offlineQueue is off`, command, false);
    }
    if (this.failFast) {
      return new ConnectionClosedError(`connection to ${this.address} is down; commands fail fast after ${this.reconnectPolicyFailQueued()} failed attempts until it is back`, command, false);
    }
    if (this.offline.length >= this.options.maxOfflineQueue) {
      return new ClientStateError(`${command}: offline queue of ${this.address} is full (maxOfflineQueue ${this.options.maxOfflineQueue})`);
    }
    return undefined;
  }

  private reconnectPolicyFailQueued(): number {
    return this.options.reconnect === false ? 0 : this.options.reconnect.failQueuedAfter;
  }

  /** Writes what this tick queued and no slice took yet, in one syscall. Called by the loop's tick flush. */
  [kFlush](): void {
    this.flushScheduled = false;
    this.writes.endTick();
    this.writeQueued();
  }

  /** Hands the write buffer to the socket: at the tick's end, or when a slice is full. */
  private writeQueued(): void {
    // The one check tracing costs a write while nobody listens (docs/tracing.md).
    const written = writeObserved() ? tracedWrite(this, this.options, this.writes, this.replies) : this.writes.write();
    if (written && this.drainWaiters.length !== 0) this.listenForDrain();
  }

  // ---------------------------------------------------------------- replies

  /**
   * Writes what is queued now instead of at the tick's end: for a command that could be sent
   * only once a reply began to arrive (the next SCAN, from its cursor), while the rest of that
   * reply is still being decoded.
   */
  [kWriteNow](): void {
    if (this._state === 'ready' && !this.closing) this.writeQueued();
  }

  private onData(chunk: Buffer): void {
    this.decoder.feed(chunk);
    if (this.drainWaiters.length !== 0) this.checkDrain();
    if (this.closing) this.maybeQuit();
  }

  // ---------------------------------------------------------------- push mode (pub/sub)

  /**
   * Push mode, for a connection that pub/sub opened for itself: a reply that arrives while no
   * command waits for one goes to `handler` instead of being a protocol error. Commands are
   * then written with [kSubmitUnanswered]; the FIFO still serves the handshake and QUIT, so a
   * connection nobody else sends on keeps its one-reply-per-command invariant for those.
   */
  [kSetPushHandler](handler: PushHandler): void {
    this.replies.setPushHandler(handler);
  }

  /** Registers a hearer of the RESP3 push frames no push-mode handler takes; returns its remover. */
  [kAddPushListener](listener: PushListener): () => void {
    return this.replies.addPushListener(listener);
  }

  /**
   * Stops (false) or resumes (true) reading the current socket: backpressure for a push-mode
   * consumer that falls behind (the server buffers, up to its client-output-buffer-limit).
   * A new socket after a reconnect starts reading.
   */
  [kSetReading](on: boolean): void {
    if (on) this.socket?.resume();
    else this.socket?.pause();
  }

  // ---------------------------------------------------------------- timeouts

  private armSweep(deadline: number): void {
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(1, deadline - Date.now()));
    this.sweepTimer.unref?.();
  }

  /**
   * Rejects every command whose deadline passed. Deadlines from one timeout setting grow
   * along the FIFO, so each walk stops at the first live one, stepping over commands with no
   * deadline (sent with a timeout of their own); timed-out sinks stay in the FIFO.
   */
  private sweep(): void {
    this.sweepTimer = undefined;
    const now = Date.now();
    let next = 0;
    // Offline: expired ones are settled (onReady skips them) and leave when at the head.
    for (let i = 0; i < this.offline.length;) {
      const { sink } = this.offline.peekAt(i)!;
      if (!sink.settled) {
        if (sink.deadline === 0) { i++; continue; }
        if (sink.deadline > now) { next = sink.deadline; break; }
        sink.rejectReply(new TimeoutError(`${sink.command}: no connection to ${this.address} within the command timeout (never written)`));
      }
      if (i === 0) this.offline.shift();
      else i++;
    }
    const expired = this.replies.sweep(now, next);
    next = this.replies.nextDeadline;
    if (next !== 0) this.armSweep(next);
    this.releaseIfIdle();
    // Only a written command can leave the socket out of step; one that timed out in the
    // offline queue says nothing about a connection that is still being made.
    if (expired !== 0 && this.options.resetOnTimeout && this.socket !== undefined) {
      this.drop(new TimeoutError(`reset after ${expired} command(s) timed out (resetOnTimeout)`));
    }
    if (this.drainWaiters.length !== 0) this.checkDrain();
    if (this.closing) this.maybeQuit();
  }

  /**
   * Called when a command sent with its own timeout (loop.send(..., { timeout })) timed out:
   * with resetOnTimeout a written one resets the connection, as commandTimeout does.
   */
  [kCommandTimedOut](sink: ReplySink): void {
    if (this.options.resetOnTimeout && this.socket !== undefined) {
      if (this.replies.includes(sink)) {
        this.drop(new TimeoutError(`reset after ${sink.command} timed out (resetOnTimeout)`));
        return;
      }
    }
    if (this.closing) this.maybeQuit();
  }

  // ---------------------------------------------------------------- socket lifecycle

  private open(): void {
    const o = this.options;
    this._state = 'connecting';
    this.dropReason = undefined;
    if (connectChannel.hasSubscribers) this.connectTrace = connectStarted(this, o, this.attempts);
    const socket = o.tls !== undefined
      ? tls.connect({
        ...(o.path !== undefined ? { path: o.path } : { host: o.host, port: o.port }),
        servername: o.path === undefined && net.isIP(o.host) === 0 ? o.host : undefined,
        ...o.tls,
      })
      : net.connect(o.path !== undefined ? { path: o.path } : { host: o.host, port: o.port });
    this.socket = socket;
    this.writes.socket = socket;
    if (!this.holding) socket.unref();
    socket.setNoDelay(true);
    if (o.keepAlive !== false) socket.setKeepAlive(true, o.keepAlive);
    if (o.connectTimeout > 0) {
      this.connectTimer = setTimeout(() => {
        this.emit('error', new TimeoutError(`could not connect to ${this.address} within ${o.connectTimeout}ms (connectTimeout)`), this);
        this.drop(new TimeoutError(`connect to ${this.address} timed out`));
      }, o.connectTimeout);
      if (!this.holding) this.connectTimer.unref();
    }
    socket.once(o.tls !== undefined ? 'secureConnect' : 'connect', () => this.onConnect());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onSocketError(err));
    socket.on('close', () => this.onSocketClose(socket));
  }

  private onConnect(): void {
    this.emit('connect', this);
    this._state = 'handshake';
    this.helloRefused = false;
    this.sendHandshake(handshakeSteps(this.options, this.options.protocol === 3));
  }

  /** Writes the handshake's steps in one write, or is ready at once when there are none. */
  private sendHandshake(steps: string[][]): void {
    if (steps.length === 0) {
      this.onReady();
      return;
    }
    this.replies.handshakeLeft = steps.length;
    let text = '';
    for (const [name, ...args] of steps) {
      text += encodeCommand(name!, args) as string;
      this.replies.pushOwn(new CallbackSink(name!, (err) => this.onHandshakeReply(name!, err)));
    }
    this.socket!.write(text);
  }

  private onHandshakeReply(step: string, err: Error | null): void {
    // Socket lost mid-handshake: the close path retries. Failed already: the replies to the
    // steps after AUTH (NOAUTH) arrive in the same chunk and must not fail it again.
    if (this._state !== 'handshake' || this.fatal !== undefined || this.dropReason !== undefined) return;
    if (err instanceof ReplyError && step === 'HELLO' && helloRefused(err, this.options)) this.helloRefused = true;
    if (this.helloRefused) {
      // RESP2 only: the steps written after HELLO are answered (or refused) and forgotten, then
      // the whole handshake goes again without HELLO.
      if (--this.replies.handshakeLeft === 0) {
        this.helloRefused = false;
        this.sendHandshake(handshakeSteps(this.options, false));
      }
      return;
    }
    if (err instanceof ReplyError) {
      this.replies.handshakeLeft = 0;
      const failure = handshakeFailure(step, err, this.options, this.address);
      if ('retry' in failure) {
        this.emit('error', failure.retry, this);
        this.drop(failure.retry);
        return;
      }
      this.fail(failure.fatal);
      return;
    }
    if (--this.replies.handshakeLeft === 0 && this._state === 'handshake') this.onReady();
  }

  private onReady(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (this.connectTrace !== undefined) {
      connectEnded(this.connectTrace, undefined);
      this.connectTrace = undefined;
    }
    if (this.everReady) this.counters.reconnects++;
    this.everReady = true;
    this.attempts = 0;
    this.failFast = false;
    this._state = 'ready';
    // Queued commands first: a command sent from a 'ready' listener goes after them.
    while (this.offline.length !== 0) {
      const { encoded, sink } = this.offline.shift()!;
      if (!sink.settled) this.writeLater(encoded, sink);
    }
    this.emit('ready', this);
    if (this.observer?.onReady !== undefined) this.tell(this.observer.onReady, this);
    this.releaseIfIdle();
    if (this.drainWaiters.length !== 0) this.checkDrain();
    if (this.closing) this.maybeQuit();
  }

  private onSocketError(err: Error): void {
    if (this.dropReason === undefined) this.dropReason = err;
    this.emit('error', err, this);
  }

  /** Destroys the socket; onSocketClose does the bookkeeping. */
  private drop(reason: Error): void {
    if (this.dropReason === undefined) this.dropReason = reason;
    this.socket?.destroy();
  }

  private onSocketClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.writes.socket = undefined;
    this.drainListening = false;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.counters.bytesWritten += socket.bytesWritten;
    const reason = this.dropReason ?? new Error('the server closed the connection');
    if (this.connectTrace !== undefined) {
      connectEnded(this.connectTrace, reason);
      this.connectTrace = undefined;
    }
    const wasReady = this._state === 'ready';
    const wasClosed = this._state === 'closed';
    this.replies.handshakeLeft = 0;

    // Decide first, then tell: listeners of the events below may send commands, and those
    // must see the state that follows (queued for the next socket, or refused), never 'ready'
    // with a FIFO that the next socket's handshake replies would be handed to.
    const policy = this.options.reconnect;
    let end: Error | undefined;
    if (this.quitSent || this.fatal !== undefined || wasClosed) {
      end = this.fatal ?? new ClientStateError(`connection to ${this.address} is closed`);
    } else if (this.closing && !wasReady) {
      end = new ClientStateError(`connection to ${this.address} was closed before it could send its queued commands`);
    } else if (policy === false) {
      end = new ClientStateError(`connection to ${this.address} lost and reconnect is off (${reason.message})`);
    } else if (++this.attempts > policy.maxAttempts) {
      end = new ClientStateError(`gave up reconnecting to ${this.address} after ${policy.maxAttempts} attempts (${reason.message})`);
    }
    this._state = end !== undefined ? 'closed' : 'reconnecting';
    if (end !== undefined) this.fatal ??= end;

    // Commands still in `out` never reached the socket: they go back to the offline queue.
    // Interleaved with unanswered ones (CLIENT REPLY OFF died with the socket) they cannot be
    // sent alone, so they fail, unwritten.
    const { commands, withUnanswered } = this.writes.takeUnwritten();
    if (withUnanswered === 0) {
      for (let i = commands.length - 1; i >= 0; i--) this.offline.unshift({ encoded: commands[i]!, sink: this.replies.popBack() });
    } else {
      for (let i = commands.length - withUnanswered; i > 0; i--) {
        const sink = this.replies.popBack();
        if (!sink.settled) sink.rejectReply(new ConnectionClosedError(`connection to ${this.address} lost (${reason.message})`, sink.command, false));
      }
    }

    const pending = this.replies.takeAll();
    for (const sink of pending) {
      if (sink.settled) continue;
      sink.rejectReply(reason instanceof ProtocolError
        ? new ProtocolError(`${sink.command}: ${reason.message}`)
        : new ConnectionClosedError(`connection to ${this.address} lost (${reason.message})`, sink.command, true));
    }
    this.releaseIfIdle();
    this.emit('close', this, reason);
    if (this.observer?.onClose !== undefined) this.tell(this.observer.onClose, this, reason);

    if (end !== undefined) {
      this.finish(end);
      return;
    }
    // A 'close' listener may have called disconnect() or close() (and policy is not false here).
    if (this._state !== 'reconnecting' || policy === false) return;
    if (this.attempts >= policy.failQueuedAfter && !this.failFast) {
      this.failFast = true;
      this.rejectOffline(new ClientStateError(`could not reconnect to ${this.address} after ${this.attempts} attempts (${reason.message})`));
    }
    const delay = backoffDelay(policy, this.attempts);
    if (reconnectChannel.hasSubscribers) reconnectScheduled(this, this.attempts, delay, reason);
    this.emit('reconnecting', { attempt: this.attempts, delay, error: reason }, this);
    // Nothing else would wake producers waiting for room: the FIFO they waited on is gone.
    if (this.drainWaiters.length !== 0) this.checkDrain();
    if (this._state !== 'reconnecting') return; // a listener called disconnect() or close()
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.open();
    }, delay);
    if (!this.holding) this.reconnectTimer.unref();
  }

  /** Rejects every queued (never written) command: with `err` itself if it is an AuthError. */
  private rejectOffline(err: Error): void {
    while (this.offline.length !== 0) {
      const { sink } = this.offline.shift()!;
      if (!sink.settled) sink.rejectReply(err instanceof AuthError ? err : new ConnectionClosedError(err.message, sink.command, false));
    }
    this.releaseIfIdle();
  }

  /** Closes for good after a failure that retrying cannot fix (bad password). */
  private fail(err: Error): void {
    this.fatal = err;
    this.emit('error', err, this);
    this.drop(err);
  }

  /** Final state: nothing queued survives, no timer or socket is left. */
  private finish(err: Error): void {
    this._state = 'closed';
    this.fatal ??= err;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.sweepTimer);
    this.reconnectTimer = this.sweepTimer = undefined;
    this.rejectOffline(err);
    for (const w of this.drainWaiters.splice(0)) w.reject(err);
    this.emit('end', this);
    if (this.observer?.onEnd !== undefined) this.tell(this.observer.onEnd, this);
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }

  /**
   * Tells the loop's listeners. A listener that throws must not leave this connection half
   * way through a state change (no reconnect scheduled, futures never settled): its error is
   * thrown again on a later microtask, where it surfaces as an uncaught exception.
   */
  private emit<E extends keyof ConnectionEvents>(event: E, ...args: Parameters<ConnectionEvents[E]>): void {
    try {
      // ConnectionOwner.emit's overloads take each event with its own arguments, as `args` is.
      const heard = (this.owner.emit as (e: E, ...a: Parameters<ConnectionEvents[E]>) => boolean)(event, ...args);
      // Nobody listens (eventemitter3 does not throw as node:events would): say it once.
      if (!heard && event === 'error') warnUnheardError(this.owner, args[0] as Error);
    } catch (err) {
      queueMicrotask(() => { throw err; });
    }
  }

  /** Tells the observer, as emit() tells the loop: what it throws surfaces later, not here. */
  private tell<A extends unknown[]>(fn: (this: ConnectionObserver, ...args: A) => void, ...args: A): void {
    try {
      fn.apply(this.observer!, args);
    } catch (err) {
      queueMicrotask(() => { throw err; });
    }
  }

  // ---------------------------------------------------------------- keeping the process alive

  private hold(): void {
    this.holding = true;
    this.socket?.ref();
    this.connectTimer?.ref();
    this.reconnectTimer?.ref();
  }

  /** Lets the process exit once nothing is queued, being written or owed a reply. */
  private releaseIfIdle(): void {
    // close() holds until the socket is gone: the caller may be awaiting it.
    if (!this.holding || this.closing || (!this.everReady && !this.failFast)) return;
    if (this.replies.length !== 0 || this.offline.length !== 0 || this.writes.length !== 0) return;
    this.holding = false;
    this.socket?.unref();
    this.connectTimer?.unref();
    this.reconnectTimer?.unref();
  }

  // ---------------------------------------------------------------- backpressure

  /** Resolves once pending replies and buffered bytes are under this connection's limits. */
  waitForRoom(): Promise<void> {
    if (this.fatal !== undefined) return Promise.reject(this.fatal);
    if (this.hasRoom()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.drainWaiters.push({ resolve, reject });
      this.listenForDrain();
    });
  }

  private hasRoom(): boolean {
    return this.replies.length + this.offline.length < this.options.maxPending
      && this.bufferedBytes < this.options.maxBufferedBytes;
  }

  private checkDrain(): void {
    if (!this.hasRoom()) {
      this.listenForDrain();
      return;
    }
    for (const w of this.drainWaiters.splice(0)) w.resolve();
  }

  /** Replies arriving wake waiters from onData; a full socket buffer wakes them on 'drain'. */
  private listenForDrain(): void {
    const socket = this.socket;
    if (this.drainListening || socket === undefined || socket.writableLength < this.options.maxBufferedBytes) return;
    this.drainListening = true;
    socket.once('drain', () => {
      this.drainListening = false;
      this.checkDrain();
    });
  }

  // ---------------------------------------------------------------- closing

  /** Graceful: lets every queued and in-flight command finish, then QUIT. */
  close(): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    this.closing = true;
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (this._state === 'reconnecting') {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      this.finish(new ClientStateError(`connection to ${this.address} was closed while reconnecting`));
    } else {
      this.maybeQuit();
    }
    return done;
  }

  private maybeQuit(): void {
    if (this.quitSent || this._state !== 'ready' || this.offline.length !== 0) return;
    // Commands that timed out are not waited for (their server may never answer): QUIT goes
    // behind them and their late replies are read and dropped as usual.
    if (!this.replies.allSettled()) return;
    this.quitSent = true;
    const socket = this.socket!;
    // A server that never answers QUIT must not hold close() forever.
    const giveUp = setTimeout(() => socket.destroy(), 1000);
    giveUp.unref();
    if (!this.holding) this.hold();
    this.replies.pushOwn(new CallbackSink('QUIT', (err) => {
      if (err === null) this.replies.received--; // onReply counted it; QUIT is ours, like the handshake
      socket.end();
    }));
    socket.once('close', () => clearTimeout(giveUp));
    socket.write('*1\r\n$4\r\nQUIT\r\n');
  }

  /** Immediate: the socket is destroyed and everything not yet answered rejects. */
  disconnect(reason = 'disconnect() was called'): void {
    if (this._state === 'closed') return;
    const err = new ClientStateError(`connection to ${this.address} closed: ${reason}`);
    this.fatal = err;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.socket !== undefined) {
      this.dropReason = err;
      this.socket.destroy(); // onSocketClose rejects the in-flight commands and finishes
    } else {
      this.finish(err);
    }
  }

  /** Resolves when the connection is closed for good. */
  whenClosed(): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  [inspect.custom](): string {
    return `Connection #${this.id} <${this.address} ${this._state}, pending ${this.replies.length}>`;
  }

  toJSON(): object {
    return { id: this.id, address: this.address, state: this._state };
  }
}
