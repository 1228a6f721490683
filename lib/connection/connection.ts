/**
 * Connection: one socket to one Redis server, its handshake and reconnects, the write
 * coalescing (one write per tick) and the FIFO of pending replies.
 *
 * The invariant everything here protects: the n-th reply read from the socket belongs to
 * the n-th command written to it. A sink leaves the FIFO only when its reply is read, or
 * when the socket is gone (then every sink still in it is rejected). Timeouts settle a sink
 * but leave it in place, so its late reply is read and dropped.
 */
import net from 'node:net';
import tls from 'node:tls';
import { inspect } from 'node:util';
import Denque from 'denque';
import { encodeCommand, type Encoded } from '../protocol/encoder.js';
import { ReplyDecoder, type ReplyHandler } from '../protocol/decoder.js';
import type { ReplySink } from '../base/reply-sink.js';
import { CallbackSink } from './callback-sink.js';
import {
  AuthError, ClientStateError, ConnectionClosedError, ProtocolError, ReplyError, TimeoutError,
} from '../base/errors.js';
import { backoffDelay, type ResolvedOptions } from '../base/options.js';
import type { CommandTarget } from './target.js';
import type { CacheControl } from '../base/cache-options.js';
import { kAddPushListener, type PushListener } from './push.js';
import { toResp2Shape } from '../protocol/resp2-shapes.js';
import { warnUnheardError } from '../base/warnings.js';

/** What a connection needs from the loop that owns it. */
export interface ConnectionOwner {
  /** Flush this connection at the end of the current tick (with every other dirty one). */
  scheduleFlush(conn: Connection): void;
  emit(event: string, ...args: unknown[]): boolean;
}

export type ConnectionState =
  | 'connecting' // socket opening
  | 'handshake' // AUTH / SELECT / SETNAME in flight
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

/**
 * Where a connection in push mode (a pub/sub subscriber's own connection) sends what the
 * server sends unasked: messages and subscription confirmations, and error replies to
 * commands written with submitUnanswered().
 */
export interface PushHandler {
  onPush(reply: unknown): void;
  /** A 'message' push, without its array (the decoder's fast path); onPush gets it otherwise. */
  onMessage?(channel: unknown, message: unknown): void;
  onPushError(message: string): void;
}

interface QueuedCommand {
  encoded: Encoded;
  sink: ReplySink;
}

/**
 * Handshake errors that say "not now" rather than "never": the server is loading its data,
 * busy with a script, has no master, or has no room for another client.
 */
function isTransient(err: ReplyError): boolean {
  return err.code === 'LOADING' || err.code === 'BUSY' || err.code === 'MASTERDOWN' || err.code === 'TRYAGAIN'
    || err.code === 'CLUSTERDOWN' || /max(imum)? number of clients reached/i.test(err.message);
}

let nextId = 1;

/**
 * Commands queued in one tick after which they are written at once, without waiting for the tick
 * to end (see `queueOut`): a small slice while the server has nothing else to do, so it starts on
 * them while the caller is still sending; a large one otherwise, to bound what a long burst holds.
 */
const WRITE_SLICE = 256;
const WRITE_SLICE_BEHIND = 4096;

export class Connection implements ReplyHandler, CommandTarget {
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

  /** Written (or being written this tick) commands, oldest first. */
  private readonly pending = new Denque<ReplySink>();
  /** Encoded commands waiting for the end-of-tick flush; they are the tail of `pending`. */
  private out: Encoded[] = [];
  private outAllStrings = true;
  /** Commands in `out` with no FIFO entry (submitUnanswered); they cannot be requeued. */
  private unansweredInOut = 0;
  private flushScheduled = false;
  /** Commands queued since the last tick flush (written in slices or not). */
  private tickQueued = 0;
  /** Commands queued while the connection is not ready. */
  private readonly offline = new Denque<QueuedCommand>();

  /** Pending sinks whose decoding (returnBuffers, bigInt) differs from the connection's default. */
  private modeSwitches = 0;
  /** How many sinks at the head of `pending` are known settled (timed out). */
  private settledPrefix = 0;
  private sweepTimer: NodeJS.Timeout | undefined;

  private handshakeLeft = 0;
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

  /** Push mode: replies with no command waiting for them go here (see setPushHandler). */
  private pushHandler: PushHandler | undefined;
  /** Whether replies may come in RESP3 (HELLO 3 was sent): some need their RESP2 shape back. */
  private resp3Shapes = false;
  /** Who hears RESP3 push frames when no push-mode handler takes them (see [kPushListeners]). */
  private pushListeners: PushListener[] = [];

  /**
   * Whether the socket and timers keep the process alive: while the first connection is being
   * made (until it is ready, or until failQueuedAfter attempts have failed), and after that only
   * while there is work (commands queued, being written or owed a reply). An idle connection
   * lets the process exit, like http.Agent's idle keep-alive sockets: a program that forgets
   * close() ends, and reconnects to a server that is gone do not hold it forever.
   */
  private holding = true;

  private counters = { commandsSent: 0, repliesReceived: 0, writes: 0, bytesWritten: 0, reconnects: 0 };
  private everReady = false;
  private drainListening = false;

  constructor(owner: ConnectionOwner, options: ResolvedOptions) {
    this.owner = owner;
    this.loop = owner;
    this.options = options;
    this.address = options.path ?? `${options.host}:${options.port}/${options.db}`;
    this.decoder = new ReplyDecoder(this, options.returnBuffers, options.bigInt, options.resp3);
    this.open();
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Replies still owed for written commands (including timed-out ones not yet read). */
  get pendingReplies(): number {
    return this.pending.length;
  }

  /**
   * Bytes queued in this tick plus bytes the socket has buffered. This tick's commands are
   * counted here (in UTF-16 units for strings, close to bytes for ASCII), not on the hot path.
   */
  get bufferedBytes(): number {
    let bytes = this.socket?.writableLength ?? 0;
    const out = this.out;
    for (let i = 0; i < out.length; i++) {
      const cmd = out[i]!;
      if (typeof cmd === 'string') bytes += cmd.length;
      else for (const piece of cmd) bytes += piece.length;
    }
    return bytes;
  }

  get stats(): ConnectionStats {
    const written = this.socket?.bytesWritten ?? 0;
    return {
      commandsSent: this.counters.commandsSent,
      repliesReceived: this.counters.repliesReceived,
      writes: this.counters.writes,
      pending: this.pending.length,
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
  submitUnanswered(encoded: Encoded): void {
    if (this._state !== 'ready' || this.closing) {
      throw new ClientStateError(`connection to ${this.address} is not ready (${this._state}); unanswered commands need a ready connection`);
    }
    this.queueOut(encoded);
    this.unansweredInOut++;
    if (!this.holding) this.hold();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.owner.scheduleFlush(this);
    }
  }

  private writeLater(encoded: Encoded, sink: ReplySink): void {
    this.queueOut(encoded);
    this.pending.push(sink);
    if (!this.holding) this.hold();
    if (this.ownMode(sink)) {
      this.modeSwitches++;
      if (this.pending.length === 1) this.decodeFor(sink);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.owner.scheduleFlush(this);
    }
  }

  /**
   * A long run of commands in one tick goes out in slices as it is produced instead of all at
   * the tick's end. While the server has nothing else to do (no command of an earlier tick awaits
   * its reply, and the socket holds no earlier write) a slice is WRITE_SLICE commands: the server
   * works on the first commands of a window of 1000 while the caller is still sending the rest,
   * so less of the round trip is spent waiting (PING windows of 1000: ~1.8M/s -> ~2.3M/s). A
   * server already busy (a pipeline that keeps commands in flight, as massInsert does) gains
   * nothing from that and would pay the extra writes, so there a slice is WRITE_SLICE_BEHIND,
   * which still keeps a million un-awaited sends from holding more than a slice of encoded
   * strings. Commands in a written slice count as written, as in any earlier tick.
   */
  private queueOut(encoded: Encoded): void {
    const out = this.out;
    out.push(encoded);
    if (typeof encoded !== 'string') this.outAllStrings = false;
    this.tickQueued++;
    if (out.length < WRITE_SLICE) return;
    if (out.length >= WRITE_SLICE_BEHIND || (this.pending.length < this.tickQueued && this.socket!.writableLength === 0)) this.writeQueued();
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
  flush(): void {
    this.flushScheduled = false;
    this.tickQueued = 0;
    this.writeQueued();
  }

  /** Hands `out` to the socket: at the tick's end, or when a slice is full (see queueOut). */
  private writeQueued(): void {
    const out = this.out;
    if (out.length === 0) return;
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return; // the close handler requeues `out`
    this.out = [];
    this.counters.commandsSent += out.length;
    this.counters.writes++;
    this.unansweredInOut = 0;
    // A write queued behind another is kept by the stream as it was given: give it bytes, not a
    // rope of thousands of strings that would live until the socket drains (a long burst).
    const behind = socket.writableLength !== 0;
    if (this.outAllStrings) {
      // += builds a rope V8 flattens once on write: measurably cheaper than join('').
      let text = out[0] as string;
      for (let i = 1; i < out.length; i++) text += out[i] as string;
      socket.write(behind ? Buffer.from(text) : text);
    } else {
      // Buffer arguments: strings still go out joined, Buffers as they are.
      this.outAllStrings = true;
      socket.cork();
      let text = '';
      for (const cmd of out) {
        if (typeof cmd === 'string') { text += cmd; continue; }
        for (const piece of cmd) {
          if (typeof piece === 'string') { text += piece; continue; }
          if (text !== '') { socket.write(behind ? Buffer.from(text) : text); text = ''; }
          socket.write(piece);
        }
      }
      if (text !== '') socket.write(behind ? Buffer.from(text) : text);
      socket.uncork();
    }
    if (this.drainWaiters.length !== 0) this.listenForDrain();
  }

  // ---------------------------------------------------------------- replies

  onReply(reply: unknown): void {
    const sink = this.pending.shift();
    if (sink === undefined) {
      if (this.pushHandler !== undefined) { this.pushHandler.onPush(reply); return; }
      this.onProtocolError(new ProtocolError(`${this.address} sent a reply nobody asked for`));
      return;
    }
    if (this.settledPrefix !== 0) this.settledPrefix--;
    if (this.handshakeLeft === 0) this.counters.repliesReceived++;
    if (this.pending.length === 0) this.releaseIfIdle();
    // RESP3: a few commands' replies are nested otherwise than RESP2's (ZRANGE ... WITHSCORES).
    if (typeof reply === 'object' && reply !== null) {
      if (this.resp3Shapes && !(sink.resp3 ?? this.options.resp3)) reply = toResp2Shape(sink.command, reply, sink.blockNames);
      if (sink.command.length === 5 && sink.command.toUpperCase() === 'HELLO') this.noteProtocol(reply);
    }
    sink.resolveReply(reply);
    if (this.modeSwitches !== 0) this.afterModeSwitchedReply(sink);
  }

  /** A HELLO's reply (the handshake's or the caller's) says which protocol the replies now use. */
  private noteProtocol(reply: unknown): void {
    const entries: unknown[] = reply instanceof Map ? [...reply].flat() : Array.isArray(reply) ? reply : [];
    for (let i = 0; i + 1 < entries.length; i += 2) {
      if (String(entries[i]) === 'proto') this.resp3Shapes = Number(entries[i + 1]) === 3;
    }
  }

  /** The RESP version replies come in: 3 after HELLO 3, else 2 (a server without HELLO, or protocol: 2). */
  get protocol(): 2 | 3 {
    return this.resp3Shapes ? 3 : 2;
  }

  onErrorReply(message: string): void {
    const sink = this.pending.shift();
    if (sink === undefined) {
      if (this.pushHandler !== undefined) { this.pushHandler.onPushError(message); return; }
      this.onProtocolError(new ProtocolError(`${this.address} sent an error nobody asked for: ${message}`));
      return;
    }
    if (this.settledPrefix !== 0) this.settledPrefix--;
    if (this.handshakeLeft === 0) this.counters.repliesReceived++;
    if (this.pending.length === 0) this.releaseIfIdle();
    if (!sink.settled) sink.rejectReply(new ReplyError(message, sink.command));
    if (this.modeSwitches !== 0) this.afterModeSwitchedReply(sink);
  }

  onProtocolError(err: ProtocolError): void {
    this.drop(err);
  }

  /** Whether `sink` wants its reply decoded otherwise than the connection's options say. */
  private ownMode(sink: ReplySink): boolean {
    return sink.returnBuffers !== this.options.returnBuffers || sink.bigInt !== undefined || sink.resp3 !== undefined
      || sink.onReplyHead !== undefined;
  }

  /** Puts the decoder in the mode the next pending reply wants. */
  private afterModeSwitchedReply(done: ReplySink): void {
    if (this.ownMode(done)) this.modeSwitches--;
    this.decodeFor(this.pending.peekFront());
  }

  /** Decodes the next reply as `sink` wants it (the connection's options when undefined). */
  private decodeFor(sink: ReplySink | undefined): void {
    this.decoder.setMode(
      sink === undefined ? this.options.returnBuffers : sink.returnBuffers,
      sink?.bigInt ?? this.options.bigInt,
      sink?.resp3 ?? this.options.resp3,
    );
    this.decoder.peekHead = sink?.onReplyHead !== undefined;
  }

  /** The first element of the head sink's array reply, read ahead of the rest (see ReplySink.onReplyHead). */
  onReplyHead(first: unknown): void {
    this.pending.peekFront()?.onReplyHead?.(first);
  }

  /**
   * Writes what is queued now instead of at the tick's end: for a command that could be sent
   * only once a reply began to arrive (the next SCAN, from its cursor), while the rest of that
   * reply is still being decoded.
   */
  writeNow(): void {
    if (this._state === 'ready' && !this.closing) this.writeQueued();
  }

  /** An error reply inside an array (EXEC, EVAL): a ReplyError naming the command it answers. */
  nestedError(message: string): Error {
    return new ReplyError(message, this.pending.peekFront()?.command ?? '?');
  }

  /** @internal Registers a hearer of RESP3 push frames; returns the function that removes it. */
  [kAddPushListener](listener: PushListener): () => void {
    this.pushListeners = [...this.pushListeners, listener];
    return () => { this.pushListeners = this.pushListeners.filter((l) => l !== listener); };
  }

  /** A RESP3 push frame: to the push-mode handler (pub/sub), else to the push listeners (the cache). */
  onPush(frame: unknown[]): void {
    if (this.pushHandler !== undefined) {
      this.pushHandler.onPush(frame);
      return;
    }
    const listeners = this.pushListeners;
    for (let i = 0; i < listeners.length; i++) listeners[i]!(frame, this);
  }

  private onData(chunk: Buffer): void {
    this.decoder.feed(chunk);
    if (this.drainWaiters.length !== 0) this.checkDrain();
    if (this.closing) this.maybeQuit();
  }

  // ---------------------------------------------------------------- push mode (pub/sub)

  /**
   * @internal Push mode, for a connection that pub/sub opened for itself: a reply that arrives while no
   * command waits for one goes to `handler` instead of being a protocol error. Commands are
   * then written with submitUnanswered(); the FIFO still serves the handshake and QUIT, so a
   * connection nobody else sends on keeps its one-reply-per-command invariant for those.
   */
  setPushHandler(handler: PushHandler): void {
    this.pushHandler = handler;
    this.decoder.pushMessages = handler.onMessage !== undefined;
  }

  /** @internal From the decoder in push mode: a 'message' push, as onReply would get it but with no array. */
  onPushMessage(channel: unknown, message: unknown, push: boolean): void {
    // RESP2: a pending sink (handshake, QUIT) takes the next reply whatever it is, as before.
    // RESP3: a push is never a reply.
    if (push) {
      if (this.pushHandler?.onMessage !== undefined) this.pushHandler.onMessage(channel, message);
      else this.onPush([this.decoder.pushReturnBuffers ? Buffer.from('message') : 'message', channel, message]);
      return;
    }
    if (this.pending.length !== 0 || this.pushHandler?.onMessage === undefined) {
      this.onReply([this.decoder.returnBuffers ? Buffer.from('message') : 'message', channel, message]);
      return;
    }
    this.pushHandler.onMessage(channel, message);
  }

  /**
   * Stops (false) or resumes (true) reading the current socket: backpressure for a push-mode
   * consumer that falls behind (the server buffers, up to its client-output-buffer-limit).
   * A new socket after a reconnect starts reading.
   */
  setReading(on: boolean): void {
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
    let expired = 0;
    for (let i = this.settledPrefix; i < this.pending.length; i++) {
      const sink = this.pending.peekAt(i)!;
      if (sink.settled || sink.deadline === 0) { if (i === this.settledPrefix) this.settledPrefix++; continue; }
      if (sink.deadline > now) {
        if (next === 0 || sink.deadline < next) next = sink.deadline;
        break;
      }
      expired++;
      sink.rejectReply(new TimeoutError(`${sink.command}: no reply from ${this.address} within the command timeout; its reply will be read and dropped`));
      if (i === this.settledPrefix) this.settledPrefix++;
    }
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
  commandTimedOut(sink: ReplySink): void {
    if (this.options.resetOnTimeout && this.socket !== undefined) {
      for (let i = 0; i < this.pending.length; i++) {
        if (this.pending.peekAt(i) === sink) {
          this.drop(new TimeoutError(`reset after ${sink.command} timed out (resetOnTimeout)`));
          return;
        }
      }
    }
    if (this.closing) this.maybeQuit();
  }

  // ---------------------------------------------------------------- socket lifecycle

  private open(): void {
    const o = this.options;
    this._state = 'connecting';
    this.dropReason = undefined;
    const socket = o.tls !== undefined
      ? tls.connect({
        ...(o.path !== undefined ? { path: o.path } : { host: o.host, port: o.port }),
        servername: o.path === undefined && net.isIP(o.host) === 0 ? o.host : undefined,
        ...o.tls,
      })
      : net.connect(o.path !== undefined ? { path: o.path } : { host: o.host, port: o.port });
    this.socket = socket;
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
    const o = this.options;
    const steps: string[][] = [];
    if (o.password !== undefined) {
      const password = o.password.reveal();
      steps.push(o.username !== undefined ? ['AUTH', o.username, password] : ['AUTH', password]);
    }
    if (o.db !== 0) steps.push(['SELECT', String(o.db)]);
    if (o.name !== undefined) steps.push(['CLIENT', 'SETNAME', o.name]);
    if (o.readOnly) steps.push(['READONLY']);
    if (steps.length === 0) {
      this.onReady();
      return;
    }
    this.handshakeLeft = steps.length;
    let text = '';
    for (const [name, ...args] of steps) {
      text += encodeCommand(name!, args) as string;
      this.pending.push(new CallbackSink(name!, (err) => this.onHandshakeReply(name!, err)));
    }
    this.socket!.write(text);
  }

  private onHandshakeReply(step: string, err: Error | null): void {
    // Socket lost mid-handshake: the close path retries. Failed already: the replies to the
    // steps after AUTH (NOAUTH) arrive in the same chunk and must not fail it again.
    if (this._state !== 'handshake' || this.fatal !== undefined || this.dropReason !== undefined) return;
    if (err instanceof ReplyError) {
      this.handshakeLeft = 0;
      // The server's text never contains the password; ours must not either.
      const what = step === 'AUTH' ? 'authentication' : step === 'SELECT' ? `SELECT ${this.options.db}` : step === 'CLIENT' ? 'CLIENT SETNAME' : step;
      if (isTransient(err)) {
        // Starting up, busy or full: a later attempt can succeed, so this one just fails.
        const retry = new ReplyError(`${what} on ${this.address} failed for now, will retry: ${err.message}`, err.command);
        this.emit('error', retry, this);
        this.drop(retry);
        return;
      }
      this.fail(new AuthError(`${what} failed on ${this.address}: ${err.message}`));
      return;
    }
    if (--this.handshakeLeft === 0 && this._state === 'handshake') this.onReady();
  }

  private onReady(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
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
    this.drainListening = false;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.counters.bytesWritten += socket.bytesWritten;
    const reason = this.dropReason ?? new Error('the server closed the connection');
    const wasReady = this._state === 'ready';
    const wasClosed = this._state === 'closed';
    this.handshakeLeft = 0;

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
    const answeredInOut = this.out.length - this.unansweredInOut;
    if (this.unansweredInOut === 0) {
      for (let i = this.out.length - 1; i >= 0; i--) this.offline.unshift({ encoded: this.out[i]!, sink: this.pending.pop()! });
    } else {
      for (let i = 0; i < answeredInOut; i++) {
        const sink = this.pending.pop()!;
        if (!sink.settled) sink.rejectReply(new ConnectionClosedError(`connection to ${this.address} lost (${reason.message})`, sink.command, false));
      }
    }
    this.unansweredInOut = 0;
    this.out = [];
    this.outAllStrings = true;

    const pending = this.pending.toArray();
    this.pending.clear();
    this.settledPrefix = 0;
    this.modeSwitches = 0;
    this.decoder.reset();
    this.decodeFor(undefined);
    for (const sink of pending) {
      if (sink.settled) continue;
      sink.rejectReply(reason instanceof ProtocolError
        ? new ProtocolError(`${sink.command}: ${reason.message}`)
        : new ConnectionClosedError(`connection to ${this.address} lost (${reason.message})`, sink.command, true));
    }
    this.releaseIfIdle();
    this.emit('close', this, reason);

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
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }

  /**
   * Tells the loop's listeners. A listener that throws must not leave this connection half
   * way through a state change (no reconnect scheduled, futures never settled): its error is
   * thrown again on a later microtask, where it surfaces as an uncaught exception.
   */
  private emit(event: string, ...args: unknown[]): void {
    try {
      const heard = this.owner.emit(event, ...args);
      // Nobody listens (eventemitter3 does not throw as node:events would): say it once.
      if (!heard && event === 'error') warnUnheardError(this.owner, args[0] as Error);
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
    if (this.pending.length !== 0 || this.offline.length !== 0 || this.out.length !== 0) return;
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
    return this.pending.length + this.offline.length < this.options.maxPending
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
    const last = this.pending.peekBack();
    if (last !== undefined && !last.settled) return;
    for (let i = 0; i < this.pending.length; i++) if (!this.pending.peekAt(i)!.settled) return;
    this.quitSent = true;
    const socket = this.socket!;
    // A server that never answers QUIT must not hold close() forever.
    const giveUp = setTimeout(() => socket.destroy(), 1000);
    giveUp.unref();
    if (!this.holding) this.hold();
    this.pending.push(new CallbackSink('QUIT', (err) => {
      if (err === null) this.counters.repliesReceived--; // onReply counted it; QUIT is ours, like the handshake
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
    return `Connection #${this.id} <${this.address} ${this._state}, pending ${this.pending.length}>`;
  }

  toJSON(): object {
    return { id: this.id, address: this.address, state: this._state };
  }
}
