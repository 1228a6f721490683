/**
 * Sending by slot, and what happens when a node says "not here": MOVED and ASK are followed to
 * the node they name, TRYAGAIN and CLUSTERDOWN are retried, and a command that was never written
 * (its node went away first) waits for the slot's new owner. All of it under the caller's sink,
 * which settles once. A command that was written to a node that then died is never re-sent.
 */
import type { Connection } from '../../connection/connection.js';
import { ForwardingSink, type ReplySink } from '../../base/reply-sink.js';
import { encodeCommand, type Encoded } from '../../protocol/encoder.js';
import { ConnectionClosedError, isUnwritten, ReplyError, withoutWrittenNote } from '../../base/errors.js';
import type { CommandBlock } from '../router.js';
import { ask, IGNORED_REPLY } from '../ask.js';
import { parseRedirect } from './topology.js';
import type { SlotMap } from './slot-map.js';
import type { HeldDeadlines } from '../held-deadlines.js';
import { redirectChannel, type RedirectMessage } from '../../base/channels.js';

const ASKING = encodeCommand('ASKING', []) as string;
/** Longest a slot's new commands wait behind the old owner's in-flight ones (see fence()). */
const FENCE_MS = 5000;

/** What the redirections need from their cluster. */
export interface RedirectHost {
  readonly closed: boolean;
  closedError(name: string): Error;
  /** Reads the slot map again (one refresh at a time). */
  refresh(): void;
  /** Reads the map again soon while a node is down or commands wait for one. */
  pollWhileDown(): void;
  /** A MOVED taught that these slots changed owner (the client-side cache drops them). */
  slotsMoved(slots: readonly number[]): void;
  /** The timeouts of the commands held here (for a map, behind a fence, between retries). */
  readonly held: HeldDeadlines;
}

export interface RedirectCounters {
  moved: number;
  ask: number;
  tryAgain: number;
  clusterDown: number;
  rerouted: number;
  fenced: number;
}

/** Stands between a node's FIFO and the caller's sink, to follow redirections first. */
export class ClusterSink extends ForwardingSink {
  redirections = 0;
  /** When this command first found no node able to run it (CLUSTERDOWN, node gone). */
  downSince = 0;
  constructor(private readonly redirects: Redirects, user: ReplySink, readonly encoded: Encoded, readonly slot: number, readonly flags: number,
    /** A MULTI block (loop.multi) goes, and follows redirections, whole: `encoded` is unused then. */
    readonly block?: CommandBlock) {
    super(user);
  }
  resolveReply(reply: unknown): void { this.user.resolveReply(reply); }
  rejectReply(err: Error): void { this.redirects.onFailure(this, err); }
}

export class Redirects {
  readonly counters: RedirectCounters = { moved: 0, ask: 0, tryAgain: 0, clusterDown: 0, rerouted: 0, fenced: 0 };
  /** Commands on a TRYAGAIN or CLUSTERDOWN retry timer. */
  private retrying = 0;
  /** Commands that wait for a map that names their slot's owner. */
  private waiting: ClusterSink[] = [];
  /**
   * Slots whose owner changed while the old owner's connection may still hold commands for
   * them: new commands for such a slot queue here until those have come back (see fence()).
   */
  private readonly fences = new Map<number, ClusterSink[]>();

  constructor(private readonly map: SlotMap, private readonly maxRedirections: number, private readonly clusterDownTimeout: number,
    private readonly host: RedirectHost) {}

  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Whether a command still waits here for its outcome (for a map, behind a fence, on a retry timer). */
  get holding(): boolean {
    if (this.retrying !== 0 || this.waiting.some(unsettled)) return true;
    for (const held of this.fences.values()) if (held.some(unsettled)) return true;
    return false;
  }

  send(slot: number, encoded: Encoded, sink: ReplySink, flags: number): void {
    const s = new ClusterSink(this, sink, encoded, slot, flags);
    const owner = this.map.slots[slot];
    if (owner === undefined) {
      this.waitForMap(s);
      return;
    }
    if (this.fences.size !== 0) {
      const held = this.fences.get(slot);
      if (held !== undefined) {
        this.holdAtFence(held, s);
        return;
      }
    }
    this.map.connFor(owner, flags).submit(encoded, s);
  }

  sendBlock(slot: number, block: CommandBlock, sink: ReplySink): void {
    const s = new ClusterSink(this, sink, '', slot, 0, block); // flags 0: a block always goes to the master
    const owner = this.map.slots[slot];
    if (owner === undefined) this.waitForMap(s);
    else this.write(this.map.primary(owner.master), s);
  }

  /** Writes a command (or a whole block) with its ClusterSink. */
  private write(conn: Connection, s: ClusterSink): void {
    if (s.block === undefined) conn.submit(s.encoded, s);
    else s.block.writeTo(conn, s);
  }

  /** Counts a redirection on a traced command and tells `redloop:redirect` (before the map learns the new owner). */
  private redirected(kind: RedirectMessage['kind'], s: ClusterSink, to: string | undefined): void {
    const context = s.user.trace;
    if (context !== undefined) context.redirections++;
    if (!redirectChannel.hasSubscribers) return;
    const message: RedirectMessage = {
      kind, command: s.command, slot: s.slot, from: this.map.slots[s.slot]?.master.key, to, redirections: s.redirections, context,
    };
    redirectChannel.publish(message);
  }

  /** A command's reply was an error, or its connection failed it. */
  onFailure(s: ClusterSink, err: Error): void {
    if (s.user.settled) return;
    if (this.host.closed) {
      s.user.rejectReply(err instanceof ReplyError || (err instanceof ConnectionClosedError && err.written) ? err : this.host.closedError(s.command));
      return;
    }
    if (err instanceof ReplyError) {
      switch (err.code) {
        case 'MOVED':
        case 'ASK': {
          const to = parseRedirect(err.message);
          if (to === undefined || ++s.redirections > this.maxRedirections) break;
          const node = this.map.nodeAt(to);
          this.redirected(err.code, s, node.key);
          const conn = this.map.primary(node);
          if (err.code === 'MOVED') {
            this.counters.moved++;
            // Learn the one slot now; the refresh learns the rest. Commands for the slot sent
            // from now on wait until the old owner has answered what it still holds, so they
            // reach the new owner after the older ones this MOVED is the first of.
            const old = this.map.slots[to.slot]?.master;
            if (old !== node && old?.conn !== undefined) this.fence([to.slot], old.conn);
            if (old !== node) this.host.slotsMoved([to.slot]);
            this.map.moved(to.slot, node);
            this.host.refresh();
          } else {
            this.counters.ask++;
            conn.submit(ASKING, IGNORED_REPLY); // contiguous with the command: nothing runs in between
          }
          this.write(conn, s);
          return;
        }
        case 'TRYAGAIN': {
          // Multi-key command during a migration with keys on both sides: wait a moment.
          if (++s.redirections > this.maxRedirections) break;
          this.redirected('TRYAGAIN', s, undefined);
          this.counters.tryAgain++;
          this.retryLater(s, 10 * s.redirections, 'to retry after TRYAGAIN');
          return;
        }
        case 'CLUSTERDOWN': {
          const now = Date.now();
          if (s.downSince === 0) s.downSince = now;
          if (now - s.downSince >= this.clusterDownTimeout) {
            s.user.rejectReply(new ReplyError(`${err.message} (still down after ${this.clusterDownTimeout}ms, clusterDownTimeout)`, err.command));
            return;
          }
          this.counters.clusterDown++;
          ++s.redirections;
          this.redirected('CLUSTERDOWN', s, undefined);
          this.host.refresh();
          this.retryLater(s, Math.min(1000, 50 * 2 ** Math.min(5, s.redirections)), 'to retry after CLUSTERDOWN');
          return;
        }
      }
      if (s.redirections > this.maxRedirections) {
        s.user.rejectReply(new ReplyError(`${err.message} (gave up after ${this.maxRedirections} redirections, maxRedirections)`, err.command));
        return;
      }
      s.user.rejectReply(err);
      return;
    }
    // Never written (its node went away before, or its connection was retired): send it to
    // the slot's owner once the map says who that is.
    if (isUnwritten(err)) {
      const now = Date.now();
      if (s.downSince === 0) s.downSince = now;
      if (now - s.downSince >= this.clusterDownTimeout) {
        s.user.rejectReply(new ConnectionClosedError(`no node of the cluster could take it within ${this.clusterDownTimeout}ms (clusterDownTimeout): ${withoutWrittenNote(err)}`, s.command, false));
        return;
      }
      this.counters.rerouted++;
      this.waitForMap(s);
      return;
    }
    s.user.rejectReply(err);
  }

  /** Sends `s` again after `ms` (TRYAGAIN, CLUSTERDOWN); its timeout holds meanwhile. */
  private retryLater(s: ClusterSink, ms: number, where: string): void {
    this.retrying++;
    this.host.held.hold(s.user, where);
    setTimeout(() => {
      this.retrying--;
      this.resend(s);
    }, ms);
  }

  private holdAtFence(held: ClusterSink[], s: ClusterSink): void {
    this.counters.fenced++;
    held.push(s);
    this.host.held.hold(s.user, `behind the move of slot ${s.slot} (for the old owner's earlier commands to come back)`);
  }

  /** Sends a command again to whoever owns its slot now. */
  private resend(s: ClusterSink): void {
    this.host.held.release(s.user);
    if (s.user.settled) return;
    if (this.host.closed) {
      s.user.rejectReply(this.host.closedError(s.command));
      return;
    }
    const owner = this.map.slots[s.slot];
    if (owner === undefined) {
      this.waitForMap(s);
      return;
    }
    const held = this.fences.size !== 0 ? this.fences.get(s.slot) : undefined;
    if (held !== undefined) this.holdAtFence(held, s);
    else this.write(this.map.connFor(owner, s.flags), s);
  }

  /**
   * Holds new commands for `slots` (whose owner just changed) until `old` has answered every
   * command written to it before now: a PING queued behind them comes back after them, and
   * by then each one that was redirected has been re-sent to the new owner, in order. So
   * commands of one slot reach the new owner in the order they were first sent. Bounded by
   * FENCE_MS; a connection that fails settles the PING at once.
   */
  fence(slots: readonly number[], old: Connection): void {
    if (old.state !== 'ready') return; // nothing in flight there that will come back as MOVED
    const mine: number[] = [];
    for (const slot of slots) {
      if (this.fences.has(slot)) continue; // an earlier fence already holds it
      this.fences.set(slot, []);
      mine.push(slot);
    }
    if (mine.length === 0) return;
    const release = () => {
      for (const slot of mine) {
        const held = this.fences.get(slot);
        this.fences.delete(slot);
        if (held !== undefined) for (const s of held) if (!s.user.settled) this.resend(s);
      }
    };
    ask(old, ['PING'], FENCE_MS).then(release, release);
  }

  /** Parks a command until the next refresh of the map. */
  private waitForMap(s: ClusterSink): void {
    if (s.downSince === 0) s.downSince = Date.now();
    this.waiting.push(s);
    this.host.held.hold(s.user, `for a node to serve slot ${s.slot}`);
    this.host.refresh();
    this.host.pollWhileDown();
  }

  /** A new map came: what waited for one is sent again. */
  releaseWaiting(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const s of waiting) this.resend(s);
  }

  /** Commands that waited for a node longer than clusterDownTimeout reject, unwritten. */
  expireWaiting(): void {
    const now = Date.now();
    this.waiting = this.waiting.filter((s) => {
      if (s.user.settled) return false;
      if (now - s.downSince < this.clusterDownTimeout) return true;
      s.user.rejectReply(new ConnectionClosedError(`no node of the cluster served slot ${s.slot} within ${this.clusterDownTimeout}ms (clusterDownTimeout)`, s.command, false));
      return false;
    });
  }

  /** The cluster is closing: what waits here (for a map, behind a fence) rejects. */
  rejectAll(): void {
    for (const s of this.waiting.splice(0)) s.user.rejectReply(this.host.closedError(s.command));
    for (const held of this.fences.values()) for (const s of held) if (!s.user.settled) s.user.rejectReply(this.host.closedError(s.command));
    this.fences.clear();
    this.host.held.clear();
  }
}

const unsettled = (s: ClusterSink): boolean => !s.user.settled;
