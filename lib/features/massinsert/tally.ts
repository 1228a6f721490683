/**
 * Counting replies without a future per command. One shared sink (Tally) stands in a
 * connection's FIFO for every command: the n-th settlement is the n-th command that entered the
 * FIFO, and commands that never did (bad arguments, refused at once) are remembered by index so
 * failures map back to the source's numbering. On a cluster or shard set, one NodeTally per node
 * connection maps that FIFO's settlements back to source indices, and hands what came back
 * redirected or unwritten to the router.
 */
import Denque from 'denque';
import type { ReplySink } from '../../base/reply-sink.js';
import type { Encoded } from '../../protocol/encoder.js';
import { isRedirect, isUnwritten, ReplyError } from '../../base/errors.js';
import type { SlotRouter } from '../../routing/router.js';
import { kSubmitToSlot } from '../../base/internal.js';
import type { MassInsertFailure } from './options.js';

/**
 * The one sink every command shares. `settled` stays false so that it keeps receiving;
 * settlements arrive in FIFO order, which is the order commands entered the FIFO.
 */
export class Tally implements ReplySink {
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
export class IndexedReply implements ReplySink {
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
export class NodeTally implements ReplySink {
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
        cluster[kSubmitToSlot](slot, encoded, new IndexedReply(this.tally, index));
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
