/**
 * Client-side shard sets: keys spread over standalone servers by hash slot, with the 16384
 * slots cut among the N servers exactly as `redis-cli --cluster create` assigns them to N
 * masters (per = 16384 / N as a float; shard i ends at round(i * per + per - 1), the last at
 * 16383). So data laid out by a shard set is where a Redis Cluster with the same masters, in
 * the same order, would put it. Key extraction and cross-slot splitting are the cluster's.
 */
import { inspect } from 'node:util';
import pDefer, { type DeferredPromise } from 'p-defer';
import type { Connection } from '../connection/connection.js';
import type { ReplySink } from '../base/reply-sink.js';
import type { Encoded } from '../protocol/encoder.js';
import { RoutingError, TimeoutError, withoutWrittenNote } from '../base/errors.js';
import { SlotRouter, type CommandBlock } from './router.js';
import { CommandTable } from './commands.js';
import { SLOT_COUNT, keySlot } from './slot.js';
import { ask } from './ask.js';

/** The slot ranges [first, last] of each of `n` shards, in order. */
export function shardSlotRanges(n: number): Array<[number, number]> {
  if (!Number.isInteger(n) || n < 1 || n > SLOT_COUNT) throw new RangeError(`a shard set needs 1..${SLOT_COUNT} shards, got ${n}`);
  const per = SLOT_COUNT / n;
  const ranges: Array<[number, number]> = [];
  let first = 0;
  for (let i = 0; i < n; i++) {
    const last = i === n - 1 ? SLOT_COUNT - 1 : Math.round(i * per + per - 1);
    ranges.push([first, last]);
    first = last + 1;
  }
  return ranges;
}

export class ShardSet extends SlotRouter {
  readonly loop: unknown;
  protected readonly kind = 'shard set';
  /** The shards' connections, in slot order: for fan-out by hand (keyless commands). */
  readonly connections: readonly Connection[];
  /** Each shard's slot range [first, last], in the order of `connections`. */
  readonly slotRanges: ReadonlyArray<readonly [number, number]>;
  private readonly shardOfSlot: Uint16Array;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  /** Made only for a caller of whenReady(), so a failure always has a listener. */
  private ready: DeferredPromise<void> | undefined;

  /** @internal use loop.shards() */
  constructor(loop: unknown, connections: readonly Connection[]) {
    super();
    this.loop = loop;
    this.connections = Object.freeze([...connections]);
    this.slotRanges = shardSlotRanges(connections.length);
    this.shardOfSlot = new Uint16Array(SLOT_COUNT);
    this.slotRanges.forEach(([first, last], i) => this.shardOfSlot.fill(i, first, last + 1));
    this.loadCommandTable(0);
  }

  get commandTimeout(): number {
    return this.connections[0]!.commandTimeout;
  }

  get defaultReturnBuffers(): boolean {
    return this.connections[0]!.defaultReturnBuffers;
  }

  protected get routable(): boolean {
    return this.table !== undefined;
  }

  /** Every shard's connection (the same as `connections`), as Cluster has it: for fan-out. */
  get masterConnections(): Connection[] {
    return [...this.connections];
  }

  /** Resolves once the command table is known (commands need not wait for it). */
  whenReady(): Promise<void> {
    if (this.table !== undefined) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closedError('whenReady()'));
    this.ready ??= pDefer<void>();
    return this.ready.promise;
  }

  /** The connection of the shard that owns `key`'s hash slot. */
  connectionFor(key: string | Buffer | number): Connection {
    return this.connections[this.shardOfSlot[keySlot(key)]!]!;
  }

  /** The index (in `connections`) of the shard that owns `key`. */
  shardOf(key: string | Buffer | number): number {
    return this.shardOfSlot[keySlot(key)]!;
  }

  connectionForSlot(slot: number): Connection {
    return this.connections[this.shardOfSlot[slot]!]!;
  }

  protected sendToSlot(slot: number, encoded: Encoded, sink: ReplySink): void {
    this.connections[this.shardOfSlot[slot]!]!.submit(encoded, sink);
  }

  protected sendBlockToSlot(slot: number, block: CommandBlock, sink: ReplySink): void {
    block.writeTo(this.connections[this.shardOfSlot[slot]!]!, sink);
  }

  protected sendKeyless(_encoded: Encoded, sink: ReplySink, name: string): void {
    sink.rejectReply(new RoutingError(
      `${name}: a command without keys has no shard in a shard set; send it to each of shards.connections ` +
      '(fan-out by hand) or to the one shards.connectionFor(key) gives'));
  }

  waitForRoom(): Promise<void> {
    return Promise.all(this.connections.map((c) => c.waitForRoom())).then(() => undefined);
  }

  /**
   * Reads the key specs from the first shard that answers: every shard is asked at once, so a
   * shard that is down (or slow to answer) does not hold up the commands for the others until
   * its COMMAND times out. Until one answers commands wait, for at most the connections'
   * connectTimeout, so that no caller waits for servers that are all down.
   */
  private loadCommandTable(attempt: number): void {
    let failed = 0;
    for (const conn of this.connections) {
      ask(conn, ['COMMAND'], 5000).then((reply) => {
        if (this.closed || this.table !== undefined) return;
        this.table = new CommandTable(reply);
        this.releaseParked();
        this.ready?.resolve();
      }, (err: Error) => {
        if (this.closed || this.table !== undefined || ++failed < this.connections.length) return;
        this.commandTableFailed(conn, err, attempt);
      });
    }
  }

  /** Every shard failed to answer COMMAND: give up on the waiting commands past connectTimeout, and retry. */
  private commandTableFailed(conn: Connection, err: Error, attempt: number): void {
    const limit = conn.resolvedOptions.connectTimeout;
    if (limit > 0 && Date.now() - this.startedAt > limit) {
      this.rejectParked((name) => new TimeoutError(`${name}: no shard of this shard set answered COMMAND within ${limit}ms (connectTimeout): ${withoutWrittenNote(err)}; never written`));
      this.ready?.reject(new TimeoutError(`no shard answered COMMAND within ${limit}ms: ${err.message}`));
      this.ready = undefined;
    }
    this.retryTimer = setTimeout(() => this.loadCommandTable(attempt + 1), Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
    // Somebody waits for the table (a parked command, whenReady()): keep the process alive until
    // it comes or they are rejected above; the connections stop holding it after failQueuedAfter.
    if (this.parkedCount === 0 && this.ready === undefined) this.retryTimer.unref();
  }

  /** @internal Stops retrying; commands still waiting for the command table are rejected. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.rejectParked((name) => this.closedError(name));
    this.ready?.reject(this.closedError('whenReady()'));
    this.ready = undefined;
  }

  [inspect.custom](): string {
    return `ShardSet <${this.connections.map((c) => c.address).join(', ')}>`;
  }
}
