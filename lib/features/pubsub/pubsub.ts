/**
 * Pub/sub: a Subscription owns connections of its own (opened like the target's), in push
 * mode (Connection.setPushHandler), so no pipelined command ever meets a push message.
 *
 * State is kept as "wanted" (what the user asked for) against "confirmed" (what the server
 * acknowledged on each connection). Every event that loses confirmations (a reconnect, a slot
 * moving away, a failover) only clears the confirmed side; sync() then sends what is missing,
 * on whichever node now owns it. The promises (ready, add, remove) wait on that comparison.
 *
 * Targets: a Connection (everything on one connection), a cluster (SUBSCRIBE/PSUBSCRIBE on one
 * node, which the cluster broadcasts to; SSUBSCRIBE on the owner of each channel's slot), a
 * shard set (sharded channels only: nothing broadcasts between standalone servers).
 */
import { EventEmitter } from 'eventemitter3';
import Denque from 'denque';
import type { Connection, PushHandler } from '../../connection/connection.js';
import type { CommandTarget } from '../../connection/target.js';
import { kSetPushHandler, kSetReading, kSubmitUnanswered } from '../../base/internal.js';
import type { Encoded } from '../../protocol/encoder.js';
import type { ConnectionOptions } from '../../base/options.js';
import { ClientStateError, isRedirect, ReplyError, RoutingError } from '../../base/errors.js';

export type Channel = string | Buffer;

export interface SubscribeOptions {
  /** Glob patterns (PSUBSCRIBE); messages arrive as 'pmessage'. */
  patterns?: Channel[];
  /** Sharded channels (SSUBSCRIBE, Redis 7+); on a cluster, on the node owning each channel's slot. */
  sharded?: Channel[];
  /** Channels and messages as Buffers (binary payloads). Default: the target's returnBuffers. */
  returnBuffers?: boolean;
  /**
   * Messages an async iterator may hold unread before the subscription stops reading its
   * sockets (default 1000). Reading resumes below half of it. Only for `for await`; event
   * listeners get every message as it is read.
   */
  highWaterMark?: number;
}

export interface PubSubMessage {
  kind: 'message' | 'pmessage' | 'smessage';
  channel: string | Buffer;
  message: string | Buffer;
  /** The pattern that matched (pmessage only). */
  pattern?: string | Buffer;
}

/** What a subscription needs from its loop (the EventLoop, without importing it). */
export interface PubSubHost {
  connect(options: ConnectionOptions): Connection;
  on(event: string, fn: (...args: any[]) => void): unknown;
  off(event: string, fn: (...args: any[]) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  /** True once the loop is closing: the subscription's connections close with it, on purpose. */
  readonly isClosed?: boolean;
}

/** What a cluster or shard set offers (duck-typed, so pub/sub does not import them). */
interface RouterLike extends CommandTarget {
  readonly masterConnections: Connection[];
  connectionFor(key: Channel): Connection;
  whenReady(): Promise<void>;
  refresh?(): void;
  readonly connections?: readonly Connection[];
}

type Kind = 'c' | 'p' | 's';
const KINDS: readonly Kind[] = ['c', 'p', 's'];
const SUB_CMD: Record<Kind, string> = { c: 'SUBSCRIBE', p: 'PSUBSCRIBE', s: 'SSUBSCRIBE' };
const UNSUB_CMD: Record<Kind, string> = { c: 'UNSUBSCRIBE', p: 'PUNSUBSCRIBE', s: 'SUNSUBSCRIBE' };
/** A confirmation's first word → what it confirms. */
const CONFIRMATIONS: Record<string, [Kind, boolean] | undefined> = Object.assign(Object.create(null), {
  subscribe: ['c', true], unsubscribe: ['c', false],
  psubscribe: ['p', true], punsubscribe: ['p', false],
  ssubscribe: ['s', true], sunsubscribe: ['s', false],
});
const DEFAULT_HIGH_WATER_MARK = 1000;
const REROUTE_EVERY_MS = 250;

/** A stable key for a channel, whatever form it came in (string, Buffer, decoded reply). */
function keyOf(ch: Channel): string {
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

interface Inflight {
  kind: Kind;
  sub: boolean;
  keys: string[];
  left: number;
}

/** One connection of a subscription and what it should have / has subscribed. */
class SubConn implements PushHandler {
  readonly assigned: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  readonly confirmed: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  private readonly pendingSub: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  private readonly pendingUnsub: Record<Kind, Set<string>> = { c: new Set(), p: new Set(), s: new Set() };
  private readonly inflight = new Denque<Inflight>();
  everReady = false;

  constructor(readonly sub: Subscription, readonly conn: Connection, readonly address: string) {
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
      const channels = group.map((k) => this.sub.channelOf(kind, k));
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
    if (t === 'message') { this.sub.deliver('message', reply[1], reply[2], undefined); return; }
    if (t === 'pmessage') { this.sub.deliver('pmessage', reply[2], reply[3], reply[1]); return; }
    if (t === 'smessage') { this.sub.deliver('smessage', reply[1], reply[2], undefined); return; }
    const confirmation = CONFIRMATIONS[t];
    if (confirmation === undefined) return;
    const [kind, isSub] = confirmation;
    const key = reply[1] === null ? '' : keyOf(reply[1] as Channel);
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
      this.sub.channelMoved(key);
    } else {
      return;
    }
    this.sub.changed(this);
  }

  onMessage(channel: unknown, message: unknown): void {
    this.sub.deliver('message', channel, message, undefined);
  }

  onPushError(message: string): void {
    const head = this.inflight.shift();
    if (head === undefined) return;
    for (const key of head.keys) (head.sub ? this.pendingSub : this.pendingUnsub)[head.kind].delete(key);
    const err = new ReplyError(message, head.sub ? SUB_CMD[head.kind] : UNSUB_CMD[head.kind]);
    if (head.kind === 's' && isRedirect(err)) {
      for (const key of head.keys) this.sub.channelMoved(key);
      return;
    }
    this.sub.refused(this, head, err);
  }
}

interface Waiter {
  done: () => boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * One subscription: events 'message' (channel, message), 'pmessage' (pattern, channel,
 * message), 'smessage' (channel, message), 'resubscribed' (after a reconnect or a move, once
 * everything is subscribed again), 'error'; or `for await (const m of sub)`.
 */
export class Subscription extends EventEmitter {
  /** Resolves once the server has confirmed every channel, pattern and sharded channel asked for at creation. */
  readonly ready: Promise<void>;
  readonly returnBuffers: boolean;
  readonly highWaterMark: number;
  private readonly wanted: Record<Kind, Map<string, Channel>> = { c: new Map(), p: new Map(), s: new Map() };
  /** The connection for channels and patterns (one node; the cluster broadcasts). */
  private main: SubConn | undefined;
  /** Connections for sharded channels, by node address (the main one included if it is the owner). */
  private readonly byAddress = new Map<string, SubConn>();
  /** Where each sharded channel is assigned now. */
  private readonly shardHome = new Map<string, SubConn>();
  private waiters: Waiter[] = [];
  private closed = false;
  /** Set when subscriptions were lost (reconnect, move) until all are confirmed again. */
  private gap = false;
  private fatal: Error | undefined;
  private rerouteTimer: NodeJS.Timeout | undefined;
  private homeless = new Set<string>();
  // for await
  private readonly queue = new Denque<PubSubMessage>();
  private iterating = false;
  private paused = false;
  private wake: (() => void) | undefined;

  /** @internal use loop.subscribe() */
  constructor(private readonly host: PubSubHost, private readonly target: CommandTarget, channels: readonly Channel[], options: SubscribeOptions = {}) {
    super();
    const o = checkSubscribeOptions(options);
    this.returnBuffers = o.returnBuffers ?? target.defaultReturnBuffers;
    this.highWaterMark = o.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    const lists = { c: checkChannels('channels', channels, true, this.returnBuffers), p: checkChannels('patterns', o.patterns, true, this.returnBuffers), s: checkChannels('sharded', o.sharded, true, this.returnBuffers) };
    if (lists.c.length + lists.p.length + lists.s.length === 0) {
      throw new TypeError('subscribe(): give at least one channel, pattern or sharded channel, e.g. loop.subscribe(conn, [\'news\'])');
    }
    if (isRouter(target) && !isCluster(target) && lists.c.length + lists.p.length !== 0) {
      throw new RoutingError('subscribe(): a shard set has no broadcast between its servers, so only sharded channels ({ sharded: [...] }) can be subscribed through it; subscribe to channels on one of shards.connections');
    }
    host.on('ready', this.onReady);
    host.on('close', this.onClose);
    host.on('end', this.onEnd);
    if (isCluster(target)) host.on('topology', this.onTopology);
    this.ready = this.apply(lists, true);
    this.ready.catch(() => {}); // also reported as 'error'; awaiting ready is optional
  }

  /** Subscribes to more channels (and patterns / sharded channels); resolves once confirmed. */
  add(channels: readonly Channel[], more: Pick<SubscribeOptions, 'patterns' | 'sharded'> = {}): Promise<void> {
    return this.change('add', channels, more, true);
  }

  /** Unsubscribes; resolves once the server confirmed (at once for what was never confirmed). */
  remove(channels: readonly Channel[], more: Pick<SubscribeOptions, 'patterns' | 'sharded'> = {}): Promise<void> {
    return this.change('remove', channels, more, false);
  }

  private change(what: string, channels: readonly Channel[], more: Pick<SubscribeOptions, 'patterns' | 'sharded'>, adding: boolean): Promise<void> {
    try {
      if (this.closed) throw new ClientStateError(`${what}(): this subscription is closed; open a new one with loop.subscribe()`);
      if (more === null || typeof more !== 'object') throw new TypeError(`${what}(): the second argument must be { patterns?, sharded? }`);
      for (const k of Object.keys(more)) if (k !== 'patterns' && k !== 'sharded') throw new TypeError(`${what}(): unknown option "${k}" (known: patterns, sharded)`);
      const lists = {
        c: checkChannels(`${what}(): channels`, channels, true, this.returnBuffers),
        p: checkChannels(`${what}(): patterns`, more.patterns, true, this.returnBuffers),
        s: checkChannels(`${what}(): sharded`, more.sharded, true, this.returnBuffers),
      };
      if (lists.c.length + lists.p.length + lists.s.length === 0) throw new TypeError(`${what}(): give at least one channel, pattern or sharded channel`);
      if (adding && isRouter(this.target) && !isCluster(this.target) && lists.c.length + lists.p.length !== 0) {
        throw new RoutingError(`${what}(): a shard set can only take sharded channels`);
      }
      return this.apply(lists, adding);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private apply(lists: Record<Kind, Channel[]>, adding: boolean): Promise<void> {
    const items: Array<[Kind, string]> = [];
    for (const k of KINDS) {
      for (const ch of lists[k]) {
        const key = keyOf(ch);
        items.push([k, key]);
        if (adding) this.wanted[k].set(key, ch);
        else this.wanted[k].delete(key);
      }
    }
    const done = adding
      ? () => items.every(([k, key]) => !this.wanted[k].has(key) || this.isConfirmed(k, key))
      : () => items.every(([k, key]) => !this.isConfirmedAnywhere(k, key));
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ done, resolve, reject }));
    this.place().catch((err: Error) => {
      // The loop closed before the map was known: the subscription ends with it, not with an error event.
      if (this.host.isClosed === true) void this.close();
      else this.failAll(err);
    });
    return p;
  }

  /** Assigns every wanted item to a connection and sends what is missing. */
  private async place(): Promise<void> {
    if (isRouter(this.target)) await this.target.whenReady();
    if (this.closed) return;
    const needsMain = this.wanted.c.size + this.wanted.p.size !== 0 || !isRouter(this.target);
    if (needsMain) {
      const main = this.main ??= this.open(this.mainConnection());
      for (const k of ['c', 'p'] as const) {
        main.assigned[k] = new Set(this.wanted[k].keys());
      }
    }
    this.routeSharded();
    for (const sc of this.subConns()) sc.sync();
    this.checkWaiters();
  }

  /** Puts each wanted sharded channel on the connection to its slot's owner (moving it if it changed). */
  private routeSharded(): void {
    for (const sc of this.subConns()) for (const key of sc.assigned.s) if (!this.wanted.s.has(key)) sc.assigned.s.delete(key);
    for (const key of [...this.shardHome.keys()]) if (!this.wanted.s.has(key)) this.shardHome.delete(key);
    for (const [key, ch] of this.wanted.s) {
      let home: SubConn;
      if (!isRouter(this.target)) {
        home = this.main ??= this.open(this.target as Connection);
      } else {
        let owner: Connection;
        try { owner = this.target.connectionFor(ch); } catch { this.homeless.add(key); continue; }
        const address = hostPort(owner);
        home = this.byAddress.get(address) ?? this.open(owner);
      }
      const old = this.shardHome.get(key);
      if (old !== home) {
        old?.assigned.s.delete(key);
        this.shardHome.set(key, home);
      }
      home.assigned.s.add(key);
      this.homeless.delete(key);
    }
    // A node that has nothing left to serve is let go.
    for (const [address, sc] of this.byAddress) {
      if (sc !== this.main && sc.empty && sc.isSettled()) {
        this.byAddress.delete(address);
        void sc.conn.close();
      }
    }
    for (const sc of this.subConns()) sc.sync();
  }

  private mainConnection(): Connection {
    if (!isRouter(this.target)) return this.target as Connection;
    const masters = this.target.masterConnections;
    const ready = masters.filter((c) => c.state === 'ready');
    const pool = ready.length !== 0 ? ready : masters;
    if (pool.length === 0) throw new ClientStateError('subscribe(): the cluster knows no node yet');
    return pool[Math.floor(Math.random() * pool.length)]!;
  }

  /** A subscriber connection opened like `like` (same server, credentials, TLS). */
  private open(like: Connection): SubConn {
    const options = { ...like.resolvedOptions, returnBuffers: this.returnBuffers, readOnly: false } as unknown as ConnectionOptions;
    const address = hostPort(like);
    const sc = new SubConn(this, this.host.connect(options), address);
    this.byAddress.set(address, sc);
    return sc;
  }

  private subConns(): Set<SubConn> {
    const all = new Set(this.byAddress.values());
    if (this.main !== undefined) all.add(this.main);
    return all;
  }

  private find(conn: Connection): SubConn | undefined {
    for (const sc of this.subConns()) if (sc.conn === conn) return sc;
    return undefined;
  }

  private isConfirmed(k: Kind, key: string): boolean {
    const home = k === 's' ? this.shardHome.get(key) : this.main;
    return home !== undefined && home.confirmed[k].has(key);
  }

  private isConfirmedAnywhere(k: Kind, key: string): boolean {
    for (const sc of this.subConns()) if (sc.confirmed[k].has(key)) return true;
    return false;
  }

  /** @internal The original channel for a key (kept from the user's input). */
  channelOf(k: Kind, key: string): Channel {
    return this.wanted[k].get(key) ?? Buffer.from(key, 'latin1');
  }

  // ---------------------------------------------------------------- connection events

  private readonly onReady = (conn: Connection): void => {
    const sc = this.find(conn);
    if (sc === undefined || this.closed) return;
    if (this.host.isClosed === true) {
      // Ready while loop.close() is closing it: nothing may be sent on it any more.
      void this.close();
      return;
    }
    sc.everReady = true;
    sc.sync(); // before anything else: the resubscription is the first thing on the new socket
    this.checkWaiters();
  };

  private readonly onClose = (conn: Connection): void => {
    const sc = this.find(conn);
    if (sc === undefined || this.closed) return;
    if (this.host.isClosed === true) {
      // loop.close()/disconnect() is closing our connections: the subscription ends with the
      // loop (for await finishes), rather than moving to another node or reporting an error.
      void this.close();
      return;
    }
    if (sc.everReady) this.gap = true;
    sc.lost();
    if (isCluster(this.target)) {
      // The node may be gone for good (failover): ask for a new map; channels and patterns
      // move to another node now, sharded channels once the map names their new owner.
      this.target.refresh?.();
      if (sc === this.main) this.replaceMain(sc);
      this.scheduleReroute();
    }
  };

  private readonly onEnd = (conn: Connection): void => {
    const sc = this.find(conn);
    if (sc === undefined || this.closed) return;
    if (this.host.isClosed === true) {
      void this.close();
      return;
    }
    if (isCluster(this.target)) {
      for (const [a, s] of this.byAddress) if (s === sc) this.byAddress.delete(a);
      if (sc === this.main) this.replaceMain(sc);
      for (const key of sc.assigned.s) this.homeless.add(key);
      this.scheduleReroute();
      return;
    }
    this.fail(new ClientStateError(`subscription's connection to ${conn.address} closed for good; subscribe again once the server is back`));
  };

  /** Moves channels and patterns to another node (a cluster broadcasts, any node will do). */
  private replaceMain(old: SubConn): void {
    const others = (this.target as RouterLike).masterConnections.filter((c) => hostPort(c) !== old.address && c.state === 'ready');
    if (others.length === 0) return; // keep reconnecting to the same node; the next close tries again
    const next = this.byAddress.get(hostPort(others[0]!)) ?? this.open(others[0]!);
    next.assigned.c = new Set(this.wanted.c.keys());
    next.assigned.p = new Set(this.wanted.p.keys());
    this.main = next;
    old.assigned.c.clear();
    old.assigned.p.clear();
    if (old.empty) {
      if (this.byAddress.get(old.address) === old) this.byAddress.delete(old.address);
      void old.conn.close();
    }
    this.gap = true;
    next.sync();
  }

  private readonly onTopology = (target: unknown): void => {
    if (target !== this.target || this.closed) return;
    this.routeSharded();
    this.checkWaiters();
  };

  /** @internal A sharded channel's slot left its node (SUNSUBSCRIBE push, or MOVED). */
  channelMoved(key: string): void {
    if (!this.wanted.s.has(key)) return;
    this.homeless.add(key);
    this.gap = true;
    (this.target as Partial<RouterLike>).refresh?.();
    this.scheduleReroute();
  }

  /** Routes again every so often while something waits for a home (the map lags the move). */
  private scheduleReroute(): void {
    if (this.rerouteTimer !== undefined || this.closed) return;
    this.rerouteTimer = setTimeout(() => {
      this.rerouteTimer = undefined;
      if (this.closed) return;
      const wasHomeless = this.homeless.size;
      this.routeSharded();
      // Resend what the old owner refused; MOVED again means the map still lags.
      for (const sc of this.subConns()) sc.sync();
      this.checkWaiters();
      if (wasHomeless !== 0 || !this.allSettled()) {
        (this.target as Partial<RouterLike>).refresh?.();
        this.scheduleReroute();
      }
    }, REROUTE_EVERY_MS);
    this.rerouteTimer.unref?.();
  }

  /** @internal An error reply to a (un)subscribe command: the server refused it. */
  refused(sc: SubConn, cmd: Inflight, err: ReplyError): void {
    // Not retried: the same command would be refused again (ACL, bad pattern...).
    if (cmd.sub) for (const key of cmd.keys) { this.wanted[cmd.kind].delete(key); sc.assigned[cmd.kind].delete(key); }
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.reportError(err);
  }

  /** @internal Something was confirmed or lost on `sc`. */
  changed(_sc: SubConn): void {
    this.checkWaiters();
  }

  private allSettled(): boolean {
    if (this.homeless.size !== 0) return false;
    for (const sc of this.subConns()) if (!sc.isSettled()) return false;
    return true;
  }

  private checkWaiters(): void {
    if (this.gap && this.allSettled()) {
      this.gap = false;
      this.emit('resubscribed');
    }
    if (this.waiters.length === 0) return;
    const left: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.done()) w.resolve();
      else left.push(w);
    }
    this.waiters = left;
  }

  // ---------------------------------------------------------------- messages

  /** @internal One message, in the order the server sent it. */
  deliver(kind: 'message' | 'pmessage' | 'smessage', channel: unknown, message: unknown, pattern: unknown): void {
    if (kind === 'pmessage') this.emit(kind, pattern, channel, message);
    else this.emit(kind, channel, message);
    if (!this.iterating) return;
    this.queue.push(kind === 'pmessage'
      ? { kind, channel: channel as Channel, message: message as Channel, pattern: pattern as Channel }
      : { kind, channel: channel as Channel, message: message as Channel });
    if (this.wake !== undefined) { const w = this.wake; this.wake = undefined; w(); }
    if (!this.paused && this.queue.length >= this.highWaterMark) this.setPaused(true);
  }

  private setPaused(on: boolean): void {
    this.paused = on;
    for (const sc of this.subConns()) sc.conn[kSetReading](!on);
  }

  /** Messages read but not yet taken by the async iterator. */
  get queued(): number {
    return this.queue.length;
  }

  /** True while the sockets are not read because the async iterator fell behind. */
  get readingPaused(): boolean {
    return this.paused;
  }

  /** The subscription's own connections (for stats; do not send on them). */
  get connections(): Connection[] {
    return [...this.subConns()].map((sc) => sc.conn);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<PubSubMessage> {
    if (this.iterating) throw new TypeError('this subscription is already being iterated; one for await at a time (listeners can be added with on())');
    if (this.closed) throw new ClientStateError('this subscription is closed; open a new one with loop.subscribe()');
    this.iterating = true;
    const next = async (): Promise<IteratorResult<PubSubMessage, undefined>> => {
      for (;;) {
        const m = this.queue.shift();
        if (m !== undefined) {
          if (this.paused && this.queue.length <= this.highWaterMark >> 1) this.setPaused(false);
          return { done: false, value: m };
        }
        if (this.fatal !== undefined) throw this.fatal;
        if (this.closed || !this.iterating) return { done: true, value: undefined };
        await new Promise<void>((resolve) => { this.wake = resolve; });
      }
    };
    const stop = async (): Promise<IteratorResult<PubSubMessage, undefined>> => {
      this.iterating = false;
      this.queue.clear();
      if (this.paused) this.setPaused(false);
      this.wakeUp();
      return { done: true, value: undefined };
    };
    const it: AsyncIterableIterator<PubSubMessage> = { next, return: stop, [Symbol.asyncIterator]: () => it };
    return it;
  }

  private wakeUp(): void {
    if (this.wake !== undefined) { const w = this.wake; this.wake = undefined; w(); }
  }

  // ---------------------------------------------------------------- closing and errors

  private reportError(err: Error): void {
    if (this.listenerCount('error') !== 0) this.emit('error', err);
    else this.host.emit('error', err, this.main?.conn);
  }

  private failAll(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.reportError(err);
  }

  private fail(err: Error): void {
    this.fatal = err;
    this.failAll(err);
    void this.close();
  }

  /** Unsubscribes from everything and closes the subscription's connections. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearTimeout(this.rerouteTimer);
    this.host.off('ready', this.onReady);
    this.host.off('close', this.onClose);
    this.host.off('end', this.onEnd);
    this.host.off('topology', this.onTopology);
    const err = this.fatal ?? new ClientStateError('the subscription was closed before the server confirmed it');
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (this.paused) this.setPaused(false);
    this.wakeUp();
    const conns = [...this.subConns()].map((sc) => sc.conn);
    return Promise.all(conns.map((c) => c.close())).then(() => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function isRouter(t: CommandTarget): t is RouterLike {
  return Array.isArray((t as Partial<RouterLike>).masterConnections) && typeof (t as Partial<RouterLike>).connectionFor === 'function';
}

/** A cluster (refresh and 'topology'), as opposed to a static shard set. */
function isCluster(t: CommandTarget): t is RouterLike {
  return isRouter(t) && typeof t.refresh === 'function';
}

function hostPort(conn: Connection): string {
  const slash = conn.address.lastIndexOf('/');
  return slash === -1 ? conn.address : conn.address.slice(0, slash);
}

function checkSubscribeOptions(o: SubscribeOptions): SubscribeOptions {
  if (o === null || typeof o !== 'object') throw new TypeError('subscribe(): options must be an object like { patterns: [\'log.*\'] }');
  for (const k of Object.keys(o)) {
    if (!['patterns', 'sharded', 'returnBuffers', 'highWaterMark'].includes(k)) {
      throw new TypeError(`subscribe(): unknown option "${k}" (known: patterns, sharded, returnBuffers, highWaterMark)`);
    }
  }
  if (o.returnBuffers !== undefined && typeof o.returnBuffers !== 'boolean') throw new TypeError('subscribe(): returnBuffers must be a boolean');
  if (o.highWaterMark !== undefined && (!Number.isInteger(o.highWaterMark) || o.highWaterMark < 1)) {
    throw new TypeError(`subscribe(): highWaterMark must be a positive integer (messages), got ${String(o.highWaterMark)}`);
  }
  return o;
}

function checkChannels(what: string, list: readonly Channel[] | undefined, allowEmpty: boolean, returnBuffers: boolean): Channel[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new TypeError(`${what} must be an array of strings or Buffers, got ${list === null ? 'null' : typeof list}`);
  if (!allowEmpty && list.length === 0) throw new TypeError(`${what} must not be empty`);
  list.forEach((ch, i) => {
    if (typeof ch === 'string') {
      if (ch.length === 0) throw new TypeError(`${what}[${i}] is an empty string; channel names must not be empty`);
    } else if (Buffer.isBuffer(ch)) {
      if (ch.length === 0) throw new TypeError(`${what}[${i}] is an empty Buffer; channel names must not be empty`);
      if (!returnBuffers && !Buffer.from(ch.toString('utf8'), 'utf8').equals(ch)) {
        throw new TypeError(`${what}[${i}] is not valid UTF-8: binary channel names need { returnBuffers: true }`);
      }
    } else {
      throw new TypeError(`${what}[${i}] is ${ch === null ? 'null' : typeof ch}; channels must be strings or Buffers`);
    }
  });
  return [...list];
}

/** loop.subscribe() */
export function subscribe(host: PubSubHost, target: CommandTarget, channels: readonly Channel[], options?: SubscribeOptions): Subscription {
  if (!Array.isArray(channels)) {
    throw new TypeError(`subscribe(): channels must be an array, e.g. loop.subscribe(conn, ['news']) (use [] with { patterns } or { sharded }), got ${channels === null ? 'null' : typeof channels}`);
  }
  return new Subscription(host, target, channels, options);
}
