/**
 * A command's timeout holds wherever it waits. A connection times out what it holds (queued or
 * in flight); a router also holds commands no connection has: before the slot map (or the
 * command table) is known, while no node serves their slot, behind a moved slot's fence, and
 * between a TRYAGAIN or CLUSTERDOWN and the retry. Those are watched here, with one timer for
 * the earliest deadline, and rejected with a TimeoutError (never written) when it passes.
 */
import type { ReplySink } from '../base/reply-sink.js';
import { TimeoutError } from '../base/errors.js';

export class HeldDeadlines {
  /** Held sinks with a deadline, and where they wait (for the message). */
  private readonly held = new Map<ReplySink, string>();
  private timer: NodeJS.Timeout | undefined;
  private due = 0;

  /** `sink` waits in the router (`where`, e.g. "for the slot map"); a no-op without a deadline. */
  hold(sink: ReplySink, where: string): void {
    const deadline = sink.deadline;
    if (deadline === 0 || sink.settled) return;
    this.held.set(sink, where);
    if (this.timer === undefined || deadline < this.due) this.arm(deadline);
  }

  /** `sink` left the router (written to a connection, which times it out from now on). */
  release(sink: ReplySink): void {
    if (this.held.size === 0) return;
    this.held.delete(sink);
    // Nothing left to time out: the timer must not keep the process alive for nothing.
    if (this.held.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Held sinks that are not settled yet. */
  get size(): number {
    return this.held.size;
  }

  /** Forgets every held sink (the router rejected or released them all). */
  clear(): void {
    this.held.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(deadline: number): void {
    clearTimeout(this.timer);
    this.due = deadline;
    this.timer = setTimeout(this.expire, Math.max(1, deadline - Date.now()));
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    const now = Date.now();
    let next = 0;
    for (const [sink, where] of this.held) {
      if (sink.settled) { this.held.delete(sink); continue; }
      if (sink.deadline <= now) {
        this.held.delete(sink);
        sink.rejectReply(new TimeoutError(`${sink.command}: no reply within the command timeout; it was still waiting ${where} (never written)`));
        continue;
      }
      if (next === 0 || sink.deadline < next) next = sink.deadline;
    }
    if (next !== 0) this.arm(next);
  };
}
