/**
 * One connection of a subscription, in push mode (kSetPushHandler), so no pipelined
 * command ever meets a push message: what it should have subscribed ("assigned") against what
 * the server confirmed on it, the (un)subscribe commands in flight, and the push frames it reads
 * (messages, confirmations, and the unasked SUNSUBSCRIBE of a slot that moved away).
 */
import Denque from 'denque';
import type { Connection, PushHandler } from '../../connection/connection.js';
import { kSetPushHandler, kSubmitUnanswered } from '../../base/internal.js';
import type { Encoded } from '../../protocol/encoder.js';
import { isRedirect, ReplyError } from '../../base/errors.js';

export type Channel = string | Buffer;

/** What a sub-connection tells its subscription (an inner object, not the Subscription's API). */
export interface SubConnEvents {
  /** One message, in the order the server sent it. */
  deliver(kind: 'message' | 'pmessage' | 'smessage', channel: unknown, message: unknown, pattern: unknown): void;
  /** A sharded channel's slot left its node (SUNSUBSCRIBE push, or MOVED). */
  channelMoved(key: string): void;
  /** An error reply to a (un)subscribe command: the server refused it. */
  refused(sc: SubConn, cmd: Inflight, err: ReplyError): void;
  /** Something was confirmed or lost on `sc`. */
  changed(sc: SubConn): void;
  /** The original channel for a key (kept from the user's input). */
  channelOf(kind: Kind, key: string): Channel;
}

export type Kind = 'c' | 'p' | 's';
export const KINDS: readonly Kind[] = ['c', 'p', 's'];
const SUB_CMD: Record<Kind, string> = { c: 'SUBSCRIBE', p: 'PSUBSCRIBE', s: 'SSUBSCRIBE' };
const UNSUB_CMD: Record<Kind, string> = { c: 'UNSUBSCRIBE', p: 'PUNSUBSCRIBE', s: 'SUNSUBSCRIBE' };
/** A confirmation's first word → what it confirms. */
const CONFIRMATIONS: Record<string, [Kind, boolean] | undefined> = Object.assign(Object.create(null), {
  subscribe: ['c', true], unsubscribe: ['c', false],
  psubscribe: ['p', true], punsubscribe: ['p', false],
  ssubscribe: ['s', true], sunsubscribe: ['s', false],
});
/** A stable key for a channel, whatever form it came in (string, Buffer, decoded reply). */
export function channelKey(ch: Channel): string {
  return typeof ch === 'string' ? Buffer.from(ch, 'utf8').toString('latin1') : ch.toString('latin1');
}

function text(x: unknown): string {
  return typeof x === 'string' ? x : Buffer.isBuffer(x) ? x.toString('latin1') : String(x);
}

/** RESP for a pub/sub command (the shared encoder refuses these names on purpose). */
function encodePubSub(name: string, channels: readonly Channel[]): Encoded {
  let out = `*${channels.length + 1}\r\n$${name.length}\r\n${name}\r\n`;
  let pieces: Array<string | Buffer> | undefined;
  for (const ch of channels) {
    if (typeof ch === 'string') {
      out += `$${Buffer.byteLength(ch)}\r\n${ch}\r\n`;
    } else {
      (pieces ??= []).push(`${out}$${ch.length}\r\n`, ch);
      out = '\r\n';
    }
  }
  if (pieces === undefined) return out;
  pieces.push(out);
  return pieces;
}

export interface Inflight {
  kind: Kind;
  sub: boolean;
  keys: string[];
  left: number;
}

/** One connection of a subscription and what it should have / has subscribed. */
export class SubConn implements PushHandler {
  readonly assigned: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  readonly confirmed: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  private readonly pendingSub: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  private readonly pendingUnsub: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  private readonly inflight = new Denque<Inflight>();
  everReady = false;

  constructor(private readonly events: SubConnEvents, readonly conn: Connection, readonly address: string) {
    conn[kSetPushHandler](this);
  }

  get empty(): boolean {
    return this.assigned.c.size + this.assigned.p.size + this.assigned.s.size === 0;
  }

  isSettled(): boolean {
    for (const k of KINDS) {
      for (const key of this.assigned[k]) if (!this.confirmed[k].has(key)) return false;
      for (const key of this.confirmed[k]) if (!this.assigned[k].has(key)) return false;
    }
    return true;
  }

  /** The socket went away: nothing is subscribed on the next one, nothing is in flight. */
  lost(): void {
    for (const k of KINDS) {
      this.confirmed[k].clear();
      this.pendingSub[k].clear();
      this.pendingUnsub[k].clear();
    }
    this.inflight.clear();
  }

  /** Sends what is missing: subscriptions assigned but not confirmed, and the reverse. */
  sync(): void {
    if (this.conn.state !== 'ready') return;
    for (const k of KINDS) {
      const add: string[] = [];
      for (const key of this.assigned[k]) if (!this.confirmed[k].has(key) && !this.pendingSub[k].has(key)) add.push(key);
      const drop: string[] = [];
      for (const key of this.confirmed[k]) if (!this.assigned[k].has(key) && !this.pendingUnsub[k].has(key)) drop.push(key);
      this.write(k, true, add);
      this.write(k, false, drop);
    }
  }

  private write(kind: Kind, sub: boolean, keys: string[]): void {
    if (keys.length === 0) return;
    // SSUBSCRIBE's channels must share a slot: one command per channel keeps that simple.
    const groups = kind === 's' ? keys.map((k) => [k]) : [keys];
    for (const group of groups) {
      const channels = group.map((k) => this.events.channelOf(kind, k));
      this.conn[kSubmitUnanswered](encodePubSub(sub ? SUB_CMD[kind] : UNSUB_CMD[kind], channels));
      this.inflight.push({ kind, sub, keys: group, left: group.length });
      for (const key of group) (sub ? this.pendingSub : this.pendingUnsub)[kind].add(key);
    }
  }

  onPush(reply: unknown): void {
    if (!Array.isArray(reply) || reply.length < 3) return; // QUIT's OK after close() and the like
    const type = reply[0];
    // The hot path: one comparison for the common case in each decoding mode.
    const t = typeof type === 'string' ? type : text(type);
    if (t === 'message') { this.events.deliver('message', reply[1], reply[2], undefined); return; }
    if (t === 'pmessage') { this.events.deliver('pmessage', reply[2], reply[3], reply[1]); return; }
    if (t === 'smessage') { this.events.deliver('smessage', reply[1], reply[2], undefined); return; }
    const confirmation = CONFIRMATIONS[t];
    if (confirmation === undefined) return;
    const [kind, isSub] = confirmation;
    const key = reply[1] === null ? '' : channelKey(reply[1] as Channel);
    const head = this.inflight.peekFront();
    if (head !== undefined && head.kind === kind && head.sub === isSub) {
      if (--head.left === 0) this.inflight.shift();
      (isSub ? this.pendingSub : this.pendingUnsub)[kind].delete(key);
      if (isSub) this.confirmed[kind].add(key);
      else this.confirmed[kind].delete(key);
    } else if (!isSub && kind === 's') {
      // Unasked SUNSUBSCRIBE: the slot of this channel moved away from this node (resharding,
      // failover). The channel goes to its new owner once the map says who that is.
      this.confirmed.s.delete(key);
      this.events.channelMoved(key);
    } else {
      return;
    }
    this.events.changed(this);
  }

  onMessage(channel: unknown, message: unknown, kind: 'message' | 'pmessage' | 'smessage', pattern: unknown): void {
    this.events.deliver(kind, channel, message, pattern);
  }

  onPushError(message: string): void {
    const head = this.inflight.shift();
    if (head === undefined) return;
    for (const key of head.keys) (head.sub ? this.pendingSub : this.pendingUnsub)[head.kind].delete(key);
    const err = new ReplyError(message, head.sub ? SUB_CMD[head.kind] : UNSUB_CMD[head.kind]);
    if (head.kind === 's' && isRedirect(err)) {
      for (const key of head.keys) this.events.channelMoved(key);
      return;
    }
    this.events.refused(this, head, err);
  }
}
