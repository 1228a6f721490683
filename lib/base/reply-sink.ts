/**
 * What a connection's pending-reply FIFO holds. Futures are sinks; routing layers and mass
 * insertion supply their own (to see a MOVED before the user does, or to count replies
 * without allocating anything per command).
 */
import type { CommandMessage } from './channels.js';

export interface ReplySink {
  /** The command's name, for error messages. */
  readonly command: string;
  /** Whether this reply's strings should be decoded as Buffers. */
  readonly returnBuffers: boolean;
  /**
   * Whether this reply's integers should be decoded as bigints (exact beyond 2^53); when absent
   * the connection's `bigInt` option decides.
   */
  readonly bigInt?: boolean | undefined;
  /**
   * Whether this reply's RESP3 types come back native (Map, Set, number, boolean, bigint...)
   * instead of in the shapes RESP2 gives them; when absent the connection's `resp3` option decides.
   */
  readonly resp3?: boolean | undefined;
  /**
   * For a MULTI block's sink: the names of its commands, so that their replies inside EXEC's
   * take their RESP2 shapes as a lone command's would (see protocol/resp2-shapes.ts).
   */
  readonly blockNames?: readonly string[] | undefined;
  /** Absolute time (ms since epoch) after which the command times out; 0 for none. */
  deadline: number;
  /** True once the sink has an outcome; a later reply for it is read and dropped. */
  readonly settled: boolean;
  resolveReply(reply: unknown): void;
  /** `err` is a ReplyError for a server error, or a client-side failure. */
  rejectReply(err: Error): void;
  /**
   * When the reply is an array whose first element (a string) is already in the socket's buffer
   * while the rest may not be decoded yet, that element, once, before resolveReply; not called
   * otherwise. Lets a sink send its next command early (SCAN's cursor). Futures have none.
   */
  onReplyHead?(first: unknown): void;
  /**
   * @internal A traced command's `redloop:command` context (a sink that wraps another passes
   * its one on): the connection marks it written, and where, when it writes the command.
   * Read only while that channel has subscribers.
   */
  readonly trace?: CommandMessage | undefined;
}

/**
 * A sink that stands between a connection's FIFO and another sink (a cluster following a
 * MOVED, a split command's part, a script turning NOSCRIPT into EVAL) and passes on everything
 * the connection reads from a sink. Every wrapper extends this, so none forgets one: a wrapper
 * that did not pass `bigInt` on once lost a per-command option.
 */
export abstract class ForwardingSink implements ReplySink {
  constructor(readonly user: ReplySink) {}
  get command(): string { return this.user.command; }
  get returnBuffers(): boolean { return this.user.returnBuffers; }
  get bigInt(): boolean | undefined { return this.user.bigInt; }
  get resp3(): boolean | undefined { return this.user.resp3; }
  get blockNames(): readonly string[] | undefined { return this.user.blockNames; }
  get deadline(): number { return this.user.deadline; }
  set deadline(ms: number) { this.user.deadline = ms; }
  get settled(): boolean { return this.user.settled; }
  get trace(): CommandMessage | undefined { return this.user.trace; }
  abstract resolveReply(reply: unknown): void;
  abstract rejectReply(err: Error): void;
}
