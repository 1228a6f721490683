/**
 * Commands whose request policy (the server's COMMAND tips) is "every shard" and that change
 * what a node can run: FUNCTION LOAD / DELETE / FLUSH / RESTORE and SCRIPT LOAD / FLUSH. On a
 * cluster or a shard set they go to every master, so that FCALL (or EVALSHA) works wherever its
 * keys live after one call. Replies merge as the "all succeeded" response policy says: the
 * first master's reply when every master succeeded, else the first error, naming its node.
 */
import type { ReplySink } from '../base/reply-sink.js';
import type { Encoded } from '../protocol/encoder.js';
import { ReplyError, RoutingError } from '../base/errors.js';

const EVERY_MASTER = new Set(['function|load', 'function|delete', 'function|flush', 'function|restore', 'script|load', 'script|flush']);

/** Whether a command (its lower-case `container|sub` name from the command table) goes to every master. */
export function toEveryMaster(name: string): boolean {
  return EVERY_MASTER.has(name);
}

/** Anything with a connection's submit and address (a Connection, without importing it). */
interface Node {
  readonly address: string;
  submit(encoded: Encoded, sink: ReplySink): void;
}

/** Gathers one reply per master and settles the caller's sink once, when the last one is in. */
class Merge {
  left: number;
  reply: unknown = undefined;
  error: Error | undefined = undefined;
  failed = 0;
  constructor(readonly user: ReplySink, readonly total: number) {
    this.left = total;
  }

  done(index: number, reply: unknown, error: Error | undefined, address: string): void {
    if (error !== undefined) {
      this.failed++;
      if (this.error === undefined) {
        const where = ` (on ${address}; the ${this.total} masters were each sent it)`;
        this.error = error instanceof ReplyError ? new ReplyError(error.message + where, error.command) : error;
      }
    } else if (index === 0) {
      this.reply = reply;
    }
    if (--this.left !== 0 || this.user.settled) return;
    if (this.error !== undefined) this.user.rejectReply(this.error);
    else this.user.resolveReply(this.reply);
  }
}

/** One master's share: a sink in that node's FIFO that reports to the merge. */
class PartSink implements ReplySink {
  private done = false;
  deadline: number;
  constructor(private readonly merge: Merge, private readonly index: number, private readonly address: string) {
    this.deadline = merge.user.deadline;
  }
  get command(): string { return this.merge.user.command; }
  get returnBuffers(): boolean { return this.merge.user.returnBuffers; }
  get bigInt(): boolean | undefined { return this.merge.user.bigInt; }
  get settled(): boolean { return this.done || this.merge.user.settled; }
  resolveReply(reply: unknown): void {
    if (this.done) return;
    this.done = true;
    this.merge.done(this.index, reply, undefined, this.address);
  }
  rejectReply(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.merge.done(this.index, undefined, err, this.address);
  }
}

/** Sends `encoded` to every connection of `masters` and settles `sink` with the merged outcome. */
export function sendToEveryMaster(masters: readonly Node[], encoded: Encoded, sink: ReplySink, kind: string): void {
  if (masters.length === 0) {
    sink.rejectReply(new RoutingError(`${sink.command}: this ${kind} knows no master to send it to`));
    return;
  }
  const merge = new Merge(sink, masters.length);
  for (let i = 0; i < masters.length; i++) masters[i]!.submit(encoded, new PartSink(merge, i, masters[i]!.address));
}
