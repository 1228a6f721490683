/**
 * The reply queue: the invariant a connection lives by. The n-th reply read from the socket
 * belongs to the n-th command written to it. A sink leaves the queue only when its reply is read,
 * or when the socket is gone (the connection then takes every sink still in it and rejects it).
 * Timeouts settle a sink but leave it in place, so its late reply is read and dropped.
 *
 * The queue is the decoder's handler: replies go from the decoder to their sink here, with no
 * stop in the Connection (whose public surface therefore has no reply methods a user could call
 * to misalign it). It also keeps the decoder in the mode the head sink wants (returnBuffers,
 * bigInt, resp3, peekHead), and in push mode hands what no command waits for to the push handler.
 *
 * RESP3 push frames (`>`) never take a sink's place: the decoder hands them to onPush, and they
 * go to the push handler (pub/sub's own connection) or else to the push listeners (the cache),
 * even while replies are pending. Replies of a RESP3 connection get their RESP2 shapes here
 * (protocol/resp2-shapes.ts) unless their sink asks for native types.
 */
import Denque from 'denque';
import { ReplyDecoder, type PushMessageKind, type ReplyHandler } from '../protocol/decoder.js';
import type { ReplySink } from '../base/reply-sink.js';
import { ProtocolError, ReplyError, TimeoutError } from '../base/errors.js';
import { toResp2Shape } from '../protocol/resp2-shapes.js';

/**
 * Where a connection in push mode (a pub/sub subscriber's own connection) sends what the
 * server sends unasked: messages and subscription confirmations, and error replies to
 * commands written with no reply expected.
 */
export interface PushHandler {
  onPush(reply: unknown): void;
  /**
   * A 'message', 'pmessage' or 'smessage' push, without its array (the decoder's fast path;
   * `pattern` for a pmessage); onPush gets it otherwise.
   */
  onMessage?(channel: unknown, message: unknown, kind: PushMessageKind, pattern: unknown): void;
  onPushError(message: string): void;
}

/** Hears a RESP3 push frame, in RESP2 shapes (`['invalidate', ['key']]`), with the connection it came on. */
export type PushListener = (frame: unknown[], conn: unknown) => void;

/** What the queue tells its connection; rare events only (never once per reply). */
export interface ReplyQueueOwner {
  /** The queue just became empty (the connection may let the process exit). */
  readonly onEmpty: () => void;
  /** The stream cannot be trusted any more: the connection must drop its socket. */
  readonly onBroken: (err: ProtocolError) => void;
}

export class ReplyQueue implements ReplyHandler {
  /** Written (or being written this tick) commands, oldest first. */
  private readonly fifo = new Denque<ReplySink>();
  /** How many sinks at the head are known settled (timed out): the sweep starts after them. */
  private settledPrefix = 0;
  /** Sinks in the queue whose decoding (returnBuffers, bigInt, onReplyHead) differs from the default. */
  private modeSwitches = 0;
  /** Push mode: replies with no command waiting for them go here (see setPushHandler). */
  private pushHandler: PushHandler | undefined = undefined;
  /** Who hears RESP3 push frames no push-mode handler takes (see kAddPushListener). */
  private pushListeners: PushListener[] = [];
  /** The connection the push listeners are told about. */
  pushSource: unknown = undefined;
  /** Whether replies come in RESP3 (a HELLO 3 was answered): a few need their RESP2 shape back. */
  resp3Replies = false;
  /** Replies to the handshake still owed: they are not counted in `received`. */
  handshakeLeft = 0;
  /** Replies read, handshake excluded. */
  received = 0;
  /** Set by sweep(): the earliest deadline still ahead (0: none). */
  nextDeadline = 0;

  /** The decoder that feeds this queue; the connection feeds it the socket's chunks. */
  readonly decoder: ReplyDecoder;

  constructor(
    private readonly owner: ReplyQueueOwner,
    private readonly address: string,
    /** The connection's defaults: replies of sinks that want the same need no mode switch. */
    private readonly returnBuffers: boolean,
    private readonly bigInt: boolean,
    /** The connection's `resp3` option: native RESP3 types unless a sink says otherwise. */
    private readonly resp3: boolean = false,
  ) {
    this.decoder = new ReplyDecoder(this, returnBuffers, bigInt, resp3);
  }

  get length(): number {
    return this.fifo.length;
  }

  /** Appends the sink of a command being written. */
  push(sink: ReplySink): void {
    this.fifo.push(sink);
    if (this.ownMode(sink)) {
      this.modeSwitches++;
      if (this.fifo.length === 1) this.decodeFor(sink);
    }
  }

  /** Appends a sink of the connection's own (handshake, QUIT), decoded in whatever mode is current. */
  pushOwn(sink: ReplySink): void {
    this.fifo.push(sink);
  }

  peekFront(): ReplySink | undefined {
    return this.fifo.peekFront();
  }

  /** Whether every sink in the queue is settled (timed out): nothing is waited for any more. */
  allSettled(): boolean {
    const last = this.fifo.peekBack();
    if (last !== undefined && !last.settled) return false;
    for (let i = 0; i < this.fifo.length; i++) if (!this.fifo.peekAt(i)!.settled) return false;
    return true;
  }

  /** The sink at `index` (0 is the oldest). */
  at(index: number): ReplySink | undefined {
    return this.fifo.peekAt(index);
  }

  includes(sink: ReplySink): boolean {
    for (let i = 0; i < this.fifo.length; i++) if (this.fifo.peekAt(i) === sink) return true;
    return false;
  }

  /** Takes the newest sink back (its command never reached the socket). */
  popBack(): ReplySink {
    return this.fifo.pop()!;
  }

  /** Empties the queue (the socket is gone) and returns what it held, oldest first. */
  takeAll(): ReplySink[] {
    const all = this.fifo.toArray();
    this.fifo.clear();
    this.settledPrefix = 0;
    this.modeSwitches = 0;
    this.handshakeLeft = 0;
    this.resp3Replies = false; // the next socket starts in RESP2 until its HELLO 3 is answered
    this.decoder.reset();
    this.decodeFor(undefined);
    return all;
  }

  // ---------------------------------------------------------------- from the decoder

  onReply(reply: unknown): void {
    const sink = this.fifo.shift();
    if (sink === undefined) {
      if (this.pushHandler !== undefined) { this.pushHandler.onPush(reply); return; }
      this.owner.onBroken(new ProtocolError(`${this.address} sent a reply nobody asked for`));
      return;
    }
    if (this.settledPrefix !== 0) this.settledPrefix--;
    if (this.handshakeLeft === 0) this.received++;
    if (this.fifo.length === 0) this.owner.onEmpty();
    if (typeof reply === 'object' && reply !== null) {
      // RESP3: a few commands' replies are nested otherwise than RESP2's (ZRANGE ... WITHSCORES).
      if (this.resp3Replies && !(sink.resp3 ?? this.resp3)) reply = toResp2Shape(sink.command, reply, sink.blockNames);
      const name = sink.command;
      if (name.length === 5 && (name.charCodeAt(0) | 32) === 104 && name.toUpperCase() === 'HELLO') this.noteProtocol(reply);
    }
    sink.resolveReply(reply);
    if (this.modeSwitches !== 0) this.afterModeSwitchedReply(sink);
  }

  /** A HELLO's reply (the handshake's or the caller's) says which protocol replies now come in. */
  private noteProtocol(reply: unknown): void {
    const entries: unknown[] = reply instanceof Map ? [...reply].flat() : Array.isArray(reply) ? reply : [];
    for (let i = 0; i + 1 < entries.length; i += 2) {
      if (String(entries[i]) === 'proto') this.resp3Replies = Number(entries[i + 1]) === 3;
    }
  }

  onErrorReply(message: string): void {
    const sink = this.fifo.shift();
    if (sink === undefined) {
      if (this.pushHandler !== undefined) { this.pushHandler.onPushError(message); return; }
      this.owner.onBroken(new ProtocolError(`${this.address} sent an error nobody asked for: ${message}`));
      return;
    }
    if (this.settledPrefix !== 0) this.settledPrefix--;
    if (this.handshakeLeft === 0) this.received++;
    if (this.fifo.length === 0) this.owner.onEmpty();
    if (!sink.settled) sink.rejectReply(new ReplyError(message, sink.command));
    if (this.modeSwitches !== 0) this.afterModeSwitchedReply(sink);
  }

  onProtocolError(err: ProtocolError): void {
    this.owner.onBroken(err);
  }

  /** An error reply inside an array (EXEC, EVAL): a ReplyError naming the command it answers. */
  nestedError(message: string): Error {
    return new ReplyError(message, this.fifo.peekFront()?.command ?? '?');
  }

  /** The first element of the head sink's array reply, read ahead of the rest (see ReplySink.onReplyHead). */
  onReplyHead(first: unknown): void {
    this.fifo.peekFront()?.onReplyHead?.(first);
  }

  /** A RESP3 push frame: to the push-mode handler (pub/sub), else to the push listeners (the cache). */
  onPush(frame: unknown[]): void {
    if (this.pushHandler !== undefined) {
      this.pushHandler.onPush(frame);
      return;
    }
    const listeners = this.pushListeners;
    for (let i = 0; i < listeners.length; i++) listeners[i]!(frame, this.pushSource);
  }

  /** Registers a hearer of RESP3 push frames; returns the function that removes it. */
  addPushListener(listener: PushListener): () => void {
    this.pushListeners = [...this.pushListeners, listener];
    return () => { this.pushListeners = this.pushListeners.filter((l) => l !== listener); };
  }

  /**
   * From the decoder in push mode: a message, pmessage or smessage push, as onReply (RESP2) or
   * onPush (RESP3, `push`) would get it but with no array.
   */
  onPushMessage(channel: unknown, message: unknown, push: boolean, kind: PushMessageKind, pattern: unknown): void {
    if (push) { // RESP3: a push is never a reply
      if (this.pushHandler?.onMessage !== undefined) this.pushHandler.onMessage(channel, message, kind, pattern);
      else this.onPush(messageFrame(kind, pattern, channel, message, this.decoder.pushReturnBuffers));
      return;
    }
    // RESP2: a pending sink (handshake, QUIT) takes the next reply whatever it is, as before.
    if (this.fifo.length !== 0 || this.pushHandler?.onMessage === undefined) {
      this.onReply(messageFrame(kind, pattern, channel, message, this.decoder.returnBuffers));
      return;
    }
    this.pushHandler.onMessage(channel, message, kind, pattern);
  }

  // ---------------------------------------------------------------- modes

  /**
   * Push mode, for a connection that pub/sub opened for itself: a reply that arrives while no
   * command waits for one goes to `handler` instead of being a protocol error.
   */
  setPushHandler(handler: PushHandler): void {
    this.pushHandler = handler;
    this.decoder.pushMessages = handler.onMessage !== undefined;
  }

  /** Whether `sink` wants its reply decoded otherwise than the connection's options say. */
  private ownMode(sink: ReplySink): boolean {
    return sink.returnBuffers !== this.returnBuffers || sink.bigInt !== undefined || sink.resp3 !== undefined
      || sink.onReplyHead !== undefined;
  }

  /** Puts the decoder in the mode the next pending reply wants. */
  private afterModeSwitchedReply(done: ReplySink): void {
    if (this.ownMode(done)) this.modeSwitches--;
    this.decodeFor(this.fifo.peekFront());
  }

  /** Decodes the next reply as `sink` wants it (the connection's options when undefined). */
  private decodeFor(sink: ReplySink | undefined): void {
    this.decoder.setMode(
      sink === undefined ? this.returnBuffers : sink.returnBuffers,
      sink?.bigInt ?? this.bigInt,
      sink?.resp3 ?? this.resp3,
    );
    this.decoder.peekHead = sink?.onReplyHead !== undefined;
  }

  // ---------------------------------------------------------------- timeouts

  /**
   * Rejects every sink whose deadline passed and returns how many. Deadlines from one timeout
   * setting grow along the queue, so the walk stops at the first live one, stepping over sinks
   * with no deadline (sent with a timeout of their own); timed-out sinks stay in the queue.
   * Leaves in `nextDeadline` the first deadline still ahead, if it is earlier than `next`.
   */
  sweep(now: number, next: number): number {
    let expired = 0;
    const fifo = this.fifo;
    for (let i = this.settledPrefix; i < fifo.length; i++) {
      const sink = fifo.peekAt(i)!;
      if (sink.settled || sink.deadline === 0) { if (i === this.settledPrefix) this.settledPrefix++; continue; }
      if (sink.deadline > now) {
        if (next === 0 || sink.deadline < next) next = sink.deadline;
        break;
      }
      expired++;
      sink.rejectReply(new TimeoutError(`${sink.command}: no reply from ${this.address} within the command timeout; its reply will be read and dropped`));
      if (i === this.settledPrefix) this.settledPrefix++;
    }
    this.nextDeadline = next;
    return expired;
  }
}

/** A message push as the general path decodes it: [kind, pattern?, channel, message]. */
function messageFrame(kind: PushMessageKind, pattern: unknown, channel: unknown, message: unknown, buffers: boolean): unknown[] {
  const type = buffers ? Buffer.from(kind) : kind;
  return kind === 'pmessage' ? [type, pattern, channel, message] : [type, channel, message];
}
