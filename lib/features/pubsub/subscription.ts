/**
 * The subscription API: what the user asked for ("wanted") and the promises that wait until the
 * server confirmed it, events and `for await` with its backpressure, reactions to connection
 * loss and slot moves, and closing. Where each channel lives is placement.ts's; what one
 * connection has subscribed is sub-connection.ts's.
 *
 * Every event that loses confirmations (a reconnect, a slot moving away, a failover) only clears
 * the confirmed side; sync() then sends what is missing, on whichever node now owns it.
 */
import { EventEmitter } from 'eventemitter3';
import Denque from 'denque';
import type { Connection, ConnectionObserver } from '../../connection/connection.js';
import type { CommandTarget } from '../../connection/target.js';
import { kSetReading, kWatchTopology } from '../../base/internal.js';
import { ClientStateError, ConfigError, RoutingError, type ReplyError } from '../../base/errors.js';
import type { Cluster } from '../../routing/cluster/cluster.js';
import type { LoopPort } from '../../routing/loop-port.js';
import { hasMasters, targetKind } from '../../routing/targets.js';
import { channelKey, KINDS, type Channel, type Inflight, type Kind, type SubConn, type SubConnEvents } from './sub-connection.js';
import { Placement } from './placement.js';

export type { Channel } from './sub-connection.js';

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

/** What a subscription needs from its loop: the routing layer's LoopPort (isClosed, emit('error')). */
export type PubSubHost = LoopPort;

const DEFAULT_HIGH_WATER_MARK = 1000;
const REROUTE_EVERY_MS = 250;

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
  private readonly placement: Placement;
  /** A cluster (refresh, moves) rather than a connection or a static shard set. */
  private readonly onCluster: boolean;
  private waiters: Waiter[] = [];
  private closed = false;
  /** Set when subscriptions were lost (reconnect, move) until all are confirmed again. */
  private gap = false;
  private fatal: Error | undefined;
  private rerouteTimer: NodeJS.Timeout | undefined;
  private stopWatchingTopology: (() => void) | undefined;
  // for await
  private readonly queue = new Denque<PubSubMessage>();
  private iterating = false;
  private paused = false;
  private wake: (() => void) | undefined;

  /** @internal use loop.subscribe() */
  constructor(private readonly host: PubSubHost, private readonly target: CommandTarget, channels: readonly Channel[], options: SubscribeOptions = {}) {
    super();
    const kind = targetKind(target);
    if (kind === 'other') throw new TypeError('subscribe(): the target must be a Connection, a cluster or a shard set: the subscription opens connections like its own');
    this.onCluster = kind === 'cluster' || kind === 'sentinel'; // a sentinel target's master moves too
    const o = checkSubscribeOptions(options);
    this.returnBuffers = o.returnBuffers ?? target.defaultReturnBuffers;
    this.highWaterMark = o.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    const lists = { c: checkChannels('channels', channels, true, this.returnBuffers), p: checkChannels('patterns', o.patterns, true, this.returnBuffers), s: checkChannels('sharded', o.sharded, true, this.returnBuffers) };
    if (lists.c.length + lists.p.length + lists.s.length === 0) {
      throw new TypeError('subscribe(): give at least one channel, pattern or sharded channel, e.g. loop.subscribe(conn, [\'news\'])');
    }
    if (kind === 'shards' && lists.c.length + lists.p.length !== 0) {
      throw new RoutingError('subscribe(): a shard set has no broadcast between its servers, so only sharded channels ({ sharded: [...] }) can be subscribed through it; subscribe to channels on one of shards.connections');
    }
    const events: SubConnEvents = {
      deliver: (kind, channel, message, pattern) => this.#deliver(kind, channel, message, pattern),
      channelMoved: (key) => this.#channelMoved(key),
      refused: (sc, cmd, err) => this.#refused(sc, cmd, err),
      changed: () => this.checkWaiters(),
      channelOf: (k, key) => this.wanted[k].get(key) ?? Buffer.from(key, 'latin1'),
    };
    // The subscription hears of its own connections only, through the observer they are opened with.
    const observer: ConnectionObserver = { onReady: this.onReady, onClose: this.onClose, onEnd: this.onEnd };
    this.placement = new Placement(target, this.wanted, events, observer, this.returnBuffers);
    if (this.onCluster) this.stopWatchingTopology = (target as Cluster)[kWatchTopology](this.onTopology);
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
      for (const k of Object.keys(more)) if (k !== 'patterns' && k !== 'sharded') throw new ConfigError(`${what}(): unknown option "${k}" (known: patterns, sharded)`);
      const lists = {
        c: checkChannels(`${what}(): channels`, channels, true, this.returnBuffers),
        p: checkChannels(`${what}(): patterns`, more.patterns, true, this.returnBuffers),
        s: checkChannels(`${what}(): sharded`, more.sharded, true, this.returnBuffers),
      };
      if (lists.c.length + lists.p.length + lists.s.length === 0) throw new TypeError(`${what}(): give at least one channel, pattern or sharded channel`);
      if (adding && targetKind(this.target) === 'shards' && lists.c.length + lists.p.length !== 0) {
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
        const key = channelKey(ch);
        items.push([k, key]);
        if (adding) this.wanted[k].set(key, ch);
        else this.wanted[k].delete(key);
      }
    }
    const done = adding
      ? () => items.every(([k, key]) => !this.wanted[k].has(key) || this.placement.isConfirmed(k, key))
      : () => items.every(([k, key]) => !this.placement.isConfirmedAnywhere(k, key));
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ done, resolve, reject }));
    this.place().catch((err: Error) => {
      // The loop closed before the map was known: the subscription ends with it, not with an error event.
      if (this.host.isClosed) void this.close();
      else this.failAll(err);
    });
    return p;
  }

  /** Once the target can route, puts every wanted item on a connection and sends what is missing. */
  private async place(): Promise<void> {
    if (hasMasters(this.target)) await this.target.whenReady();
    if (this.closed) return;
    this.placement.placeAll();
    this.checkWaiters();
  }

  // ---------------------------------------------------------------- connection events

  /**
   * The sub-connection an event of `conn` is for, or undefined when there is nothing to do: the
   * subscription is closed, or the loop is closing (loop.close()/disconnect() closes our
   * connections, and nothing may be sent on them any more): the subscription then ends with the
   * loop (for await finishes), rather than moving to another node or reporting an error.
   */
  private eventFor(conn: Connection): SubConn | undefined {
    const sc = this.placement.find(conn);
    if (sc === undefined || this.closed) return undefined;
    if (this.host.isClosed) {
      void this.close();
      return undefined;
    }
    return sc;
  }

  private readonly onReady = (conn: Connection): void => {
    const sc = this.eventFor(conn);
    if (sc === undefined) return;
    sc.everReady = true;
    sc.sync(); // before anything else: the resubscription is the first thing on the new socket
    this.checkWaiters();
  };

  private readonly onClose = (conn: Connection): void => {
    const sc = this.eventFor(conn);
    if (sc === undefined) return;
    if (sc.everReady) this.gap = true;
    sc.lost();
    if (this.onCluster) {
      // The node may be gone for good (failover): ask for a new map; channels and patterns
      // move to another node now, sharded channels once the map names their new owner.
      (this.target as Cluster).refresh();
      if (sc === this.placement.main) this.replaceMain(sc);
      this.scheduleReroute();
    }
  };

  private readonly onEnd = (conn: Connection): void => {
    const sc = this.eventFor(conn);
    if (sc === undefined) return;
    if (this.onCluster) {
      this.placement.dropNode(sc);
      if (sc === this.placement.main) this.replaceMain(sc);
      this.scheduleReroute();
      return;
    }
    this.fail(new ClientStateError(`subscription's connection to ${conn.address} closed for good; subscribe again once the server is back`));
  };

  /** Moves channels and patterns to another node (a cluster broadcasts, any node will do). */
  private replaceMain(old: SubConn): void {
    if (this.placement.replaceMain(old)) this.gap = true;
  }

  private readonly onTopology = (): void => {
    if (this.closed) return;
    this.placement.routeSharded();
    this.checkWaiters();
  };

  /** A sharded channel's slot left its node (SUNSUBSCRIBE push, or MOVED). */
  #channelMoved(key: string): void {
    if (!this.wanted.s.has(key)) return;
    this.placement.homeless.add(key);
    this.gap = true;
    if (this.onCluster) (this.target as Cluster).refresh();
    this.scheduleReroute();
  }

  /** Routes again every so often while something waits for a home (the map lags the move). */
  private scheduleReroute(): void {
    if (this.rerouteTimer !== undefined || this.closed) return;
    this.rerouteTimer = setTimeout(() => {
      this.rerouteTimer = undefined;
      if (this.closed) return;
      const wasHomeless = this.placement.homeless.size;
      this.placement.routeSharded();
      // Resend what the old owner refused; MOVED again means the map still lags.
      this.placement.syncAll();
      this.checkWaiters();
      if (wasHomeless !== 0 || !this.placement.allSettled()) {
        if (this.onCluster) (this.target as Cluster).refresh();
        this.scheduleReroute();
      }
    }, REROUTE_EVERY_MS);
    this.rerouteTimer.unref?.();
  }

  /** An error reply to a (un)subscribe command: the server refused it. */
  #refused(sc: SubConn, cmd: Inflight, err: ReplyError): void {
    // Not retried: the same command would be refused again (ACL, bad pattern...).
    if (cmd.sub) for (const key of cmd.keys) { this.wanted[cmd.kind].delete(key); sc.assigned[cmd.kind].delete(key); }
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.reportError(err);
  }

  private checkWaiters(): void {
    if (this.gap && this.placement.allSettled()) {
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

  /** One message, in the order the server sent it. */
  #deliver(kind: 'message' | 'pmessage' | 'smessage', channel: unknown, message: unknown, pattern: unknown): void {
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
    for (const sc of this.placement.subConns()) sc.conn[kSetReading](!on);
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
    return [...this.placement.subConns()].map((sc) => sc.conn);
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
    else this.host.emit('error', err, this.placement.main?.conn as Connection); // none before the first node is known
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
    this.stopWatchingTopology?.();
    const err = this.fatal ?? new ClientStateError('the subscription was closed before the server confirmed it');
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (this.paused) this.setPaused(false);
    this.wakeUp();
    const conns = [...this.placement.subConns()].map((sc) => sc.conn);
    return Promise.all(conns.map((c) => c.close())).then(() => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function checkSubscribeOptions(o: SubscribeOptions): SubscribeOptions {
  if (o === null || typeof o !== 'object') throw new TypeError('subscribe(): options must be an object like { patterns: [\'log.*\'] }');
  for (const k of Object.keys(o)) {
    if (!['patterns', 'sharded', 'returnBuffers', 'highWaterMark'].includes(k)) {
      throw new ConfigError(`subscribe(): unknown option "${k}" (known: patterns, sharded, returnBuffers, highWaterMark)`);
    }
  }
  if (o.returnBuffers !== undefined && typeof o.returnBuffers !== 'boolean') throw new ConfigError('subscribe(): returnBuffers must be a boolean');
  if (o.highWaterMark !== undefined && (!Number.isInteger(o.highWaterMark) || o.highWaterMark < 1)) {
    throw new ConfigError(`subscribe(): highWaterMark must be a positive integer (messages), got ${String(o.highWaterMark)}`);
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
