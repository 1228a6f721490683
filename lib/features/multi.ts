/**
 * Atomic blocks: MULTI, the commands, EXEC, written as one contiguous piece on one connection.
 *
 * Contiguity needs nothing from Connection: every command submitted in one synchronous run
 * lands in the same end-of-tick write, in order, so nothing of anyone else can come between
 * MULTI and EXEC. What the block needs is a sink that knows it answers n+2 replies: one
 * collector object sits in the connection's FIFO at every position of the block (MULTI → OK,
 * each command → QUEUED or an error, EXEC → the array, null, or EXECABORT) and settles the
 * block's future once, at EXEC. Timeouts, reconnects and closed connections reach it as they
 * reach any sink: the first failure settles it, and the FIFO skips and drops the rest.
 *
 * On a cluster the block is routed whole by its one slot (SlotRouter.submitBlock). A MOVED,
 * ASK, TRYAGAIN or CLUSTERDOWN while a command was queued makes the server abort the block
 * (EXECABORT: nothing of it ran); the collector then reports that redirection as the block's
 * failure, and the cluster sends the block again, whole, where it says. A block whose EXEC
 * answered is never sent again.
 */
import { frontOf } from '../core/cached-send.js';
import { Future, type ReplySink, type UnobservedErrorSink } from '../core/future.js';
import { checkCommandName, encodeCommand, type Arg, type Encoded } from '../protocol/encoder.js';
import { ExecAbortError, isRedirect, ReplyError } from '../base/errors.js';
import type { CommandBlock } from '../routing/router.js';
import { kBlockSlot, kSubmitBlock } from '../base/internal.js';
import { commandOptionsError } from '../base/options.js';
import { checkTarget, isRouter, targetKind } from '../routing/targets.js';
import type { CommandTarget } from '../connection/target.js';

/** One command of a block, as for loop.send(): ['INCR', 'counter']. */
export type BlockCommand = readonly [string, ...Arg[]];

export interface MultiOptions {
  /** Decode the replies' strings as Buffers (default: the target's setting). */
  returnBuffers?: boolean;
}

const MULTI = encodeCommand('MULTI', []) as string;
const EXEC = encodeCommand('EXEC', []) as string;

/** Commands that cannot go inside a block: they end it, nest it, or change the connection. */
const NOT_IN_BLOCK = new Set([
  'MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH', 'RESET', 'QUIT', 'AUTH', 'HELLO', 'SELECT',
  'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'SUNSUBSCRIBE', 'MONITOR',
]);

/**
 * An error inside EXEC's reply, named after the queued command it answers: the decoder names
 * every nested error after the command whose reply it is (EXEC).
 */
function asReplyError(err: Error, command: string): ReplyError {
  if (err instanceof ReplyError && err.command === command) return err;
  return new ReplyError(err.message, command);
}

/** Replaces every nested error of an EXEC reply, in place; position i answers names[i]. */
function convertNestedErrors(reply: unknown[], names: readonly string[]): unknown[] {
  for (let i = 0; i < reply.length; i++) {
    const v = reply[i];
    if (v instanceof Error) reply[i] = asReplyError(v, names[i] ?? 'EXEC');
    else if (Array.isArray(v)) convertNestedArray(v, names[i] ?? 'EXEC');
  }
  return reply;
}

function convertNestedArray(reply: unknown[], command: string): void {
  for (let i = 0; i < reply.length; i++) {
    const v = reply[i];
    if (v instanceof Error) reply[i] = asReplyError(v, command);
    else if (Array.isArray(v)) convertNestedArray(v, command);
  }
}

/** The encoded commands of a block (without MULTI and EXEC) and their names, upper-cased. */
export class MultiBlock implements CommandBlock {
  constructor(
    readonly parts: readonly Encoded[],
    readonly names: readonly string[],
    /** Whether a redirection while queueing fails the block with that redirection (on a cluster, to be followed). */
    readonly followRedirects: boolean,
  ) {}

  writeTo(conn: { submit(encoded: Encoded, sink: ReplySink): void }, outer: ReplySink): void {
    const collector = new BlockCollector(this, outer);
    conn.submit(MULTI, collector);
    for (let i = 0; i < this.parts.length; i++) conn.submit(this.parts[i]!, collector);
    conn.submit(EXEC, collector);
  }
}

/** Sits at every FIFO position of one attempt of a block; settles `outer` once. */
class BlockCollector implements ReplySink {
  /** Replies seen so far: 0 is MULTI's, 1..n the commands', n+1 EXEC's. */
  private seen = 0;
  private done = false;
  private queuedErrors: Array<ReplyError | undefined> | undefined;
  private multiError: ReplyError | undefined;

  constructor(private readonly block: MultiBlock, private readonly outer: ReplySink) {}

  /** The command whose reply comes next, so the connection names the right one in errors. */
  get command(): string {
    const i = this.seen;
    return i === 0 ? 'MULTI' : i <= this.block.parts.length ? this.block.names[i - 1]! : 'EXEC';
  }
  get returnBuffers(): boolean { return this.outer.returnBuffers; }
  get resp3(): boolean | undefined { return this.outer.resp3; }
  get blockNames(): readonly string[] { return this.block.names; }
  get deadline(): number { return this.outer.deadline; }
  set deadline(ms: number) { this.outer.deadline = ms; }
  get settled(): boolean { return this.done || this.outer.settled; }

  resolveReply(reply: unknown): void {
    if (this.done) return;
    if (this.seen++ <= this.block.parts.length) return; // MULTI's OK, a command's QUEUED
    this.done = true;
    if (this.multiError !== undefined) {
      // MULTI itself was refused, so the commands ran one by one: say so, whatever EXEC said.
      this.outer.rejectReply(new ReplyError(`${this.multiError.message} (MULTI was refused, so the commands of the block ran on their own, not atomically)`, 'MULTI'));
      return;
    }
    this.outer.resolveReply(Array.isArray(reply) ? convertNestedErrors(reply, this.block.names) : reply);
  }

  rejectReply(err: Error): void {
    if (this.done) return;
    if (!(err instanceof ReplyError)) {
      // Timeout, lost connection, closed or full queue: the block's outcome, as for any command.
      this.done = true;
      this.outer.rejectReply(err);
      return;
    }
    const i = this.seen++;
    if (i === 0) {
      this.multiError = err;
      return;
    }
    const n = this.block.parts.length;
    if (i <= n) {
      (this.queuedErrors ??= new Array<ReplyError | undefined>(n).fill(undefined))[i - 1] = err;
      return;
    }
    this.done = true;
    if (this.multiError !== undefined) {
      this.outer.rejectReply(this.multiError);
      return;
    }
    if (err.code === 'EXECABORT') {
      const queued = this.queuedErrors ?? new Array<ReplyError | undefined>(n).fill(undefined);
      const redirect = this.block.followRedirects ? queued.find((e) => isRedirect(e)) : undefined;
      this.outer.rejectReply(redirect ?? new ExecAbortError(err.message, queued));
      return;
    }
    this.outer.rejectReply(err); // EXEC itself redirected (the server discarded the block), or refused
  }
}

/**
 * Encodes the block, or says why it cannot be sent (before anything is written): an empty
 * block, a command that is not an array, a bad argument, a command that cannot go in a block.
 */
export function encodeBlock(commands: unknown): { parts: Encoded[]; names: string[] } | Error {
  if (!Array.isArray(commands) || commands.length === 0) {
    return new TypeError("multi(): the commands must be a non-empty array of commands like [['INCR', 'c'], ['GET', 'c']]");
  }
  const parts: Encoded[] = [];
  const names: string[] = [];
  for (let i = 0; i < commands.length; i++) {
    const cmd: unknown = commands[i];
    if (!Array.isArray(cmd)) return new TypeError(`multi(): command ${i} must be an array like ['GET', 'key'], got ${typeof cmd}`);
    const bad = checkCommandName(cmd[0]);
    if (bad !== undefined) return new TypeError(`multi(): command ${i}: ${bad.message}`);
    const name = (cmd[0] as string).toUpperCase();
    if (NOT_IN_BLOCK.has(name)) {
      return new TypeError(`multi(): ${name} (command ${i}) cannot go inside a block: MULTI and EXEC are added for you; for WATCH use loop.transaction()`);
    }
    const encoded = encodeCommand(cmd[0] as string, cmd, 1);
    if (typeof encoded !== 'string' && !Array.isArray(encoded)) return new TypeError(`multi(): command ${i} (${name}): ${encoded.message}`);
    parts.push(encoded);
    names.push(name);
  }
  return { parts, names };
}

/**
 * Sends MULTI, `commands`, EXEC contiguously on the target's connection (on a cluster or shard
 * set: the connection of the one slot all keys share). The future resolves to EXEC's array
 * (server errors at their positions as ReplyError) or null (a WATCH on this connection fired),
 * and rejects with ExecAbortError when a command was refused while queued.
 */
export function multi(reporter: UnobservedErrorSink & object, target: CommandTarget, commands: readonly BlockCommand[], options?: MultiOptions): Future<unknown[] | null> {
  const bad = checkTarget(target, reporter, 'multi()') ?? commandOptionsError(options, ['returnBuffers'], 'multi(): ');
  const returnBuffers = options?.returnBuffers ?? (bad === undefined && target.defaultReturnBuffers);
  const future = new Future<unknown[] | null>('MULTI', returnBuffers === true, reporter);
  if (bad !== undefined) {
    future.rejectReply(bad);
    return future;
  }
  const encoded = encodeBlock(commands);
  if (encoded instanceof Error) {
    future.rejectReply(encoded);
    return future;
  }
  if (target.commandTimeout !== 0) future.deadline = Date.now() + target.commandTimeout;
  const front = frontOf(target);
  if (front !== undefined) for (const cmd of commands) front.beforeSend(String(cmd[0]), cmd, 1); // own writes leave the client-side cache
  if (!isRouter(target)) {
    new MultiBlock(encoded.parts, encoded.names, false).writeTo(target as unknown as { submit(e: Encoded, s: ReplySink): void }, future);
    return future;
  }
  const block = new MultiBlock(encoded.parts, encoded.names, targetKind(target) === 'cluster');
  const route = (): void => {
    const slot = target[kBlockSlot](commands);
    if (typeof slot !== 'number') future.rejectReply(slot);
    else target[kSubmitBlock](slot, block, future);
  };
  if (target.canRouteBlocks) route();
  else target.whenReady().then(route, (err: Error) => future.rejectReply(err));
  return future;
}
