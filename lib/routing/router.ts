/**
 * The routing layer shared by clusters and shard sets: a target that finds each command's
 * keys (from the server's own key specs), hashes them to a slot, and hands the command to the
 * connection that owns the slot. Commands sent before the command table (and, for a cluster,
 * the slot map) is known wait here and go out in the order they were sent.
 */
import Denque from 'denque';
import type { Connection } from '../connection/connection.js';
import type { ReplySink } from '../base/reply-sink.js';
import type { Encoded } from '../protocol/encoder.js';
import type { CommandTarget } from '../connection/target.js';
import { RoutingError } from '../base/errors.js';
import type { CacheControl } from '../base/cache-options.js';
import { kBlockSlot, kKeyOf, kSubmitBlock, kSubmitToSlot } from '../base/internal.js';
import { CommandFlag, type CommandInfo, type CommandTable } from './commands.js';
import { keySlot } from './slot.js';
import { splitBySlot, splitKind } from './split.js';
import { HeldDeadlines } from './held-deadlines.js';
import { sendToEveryMaster, toEveryMaster } from './fan-out.js';

interface Parked {
  encoded: Encoded;
  sink: ReplySink;
  name: string;
  args: unknown[];
}

/**
 * A block of commands (MULTI ... EXEC) that must reach one connection contiguously. The router
 * does not look inside: the block writes itself, so a redirection can send it again whole.
 */
export interface CommandBlock {
  /**
   * Submits every command of the block to `conn` in one synchronous run (so nothing else lands
   * in between), with a fresh collector that settles `outer` once, with the block's outcome.
   */
  writeTo(conn: { submit(encoded: Encoded, sink: ReplySink): void }, outer: ReplySink): void;
}

/** Commands that would leave state on a shared connection, or that need one of their own. */
const CONNECTION_STATE = new Set(['MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH', 'SELECT', 'READONLY', 'READWRITE', 'ASKING', 'RESET', 'AUTH', 'HELLO', 'QUIT']);

export abstract class SlotRouter implements CommandTarget {
  abstract readonly loop: unknown;
  abstract readonly commandTimeout: number;
  abstract readonly defaultReturnBuffers: boolean;
  /** The client-side cache over this router's nodes (`cache` option), else undefined. See docs/cache.md. */
  declare readonly cache: CacheControl | undefined;
  /** What this router is called in messages ('cluster', 'shard set'). */
  protected abstract readonly kind: string;
  protected table: CommandTable | undefined;
  private parked = new Denque<Parked>();
  protected closed = false;
  /** Commands split per slot so far. */
  protected splitCount = 0;
  /** The timeouts of commands that wait here, on no connection (see HeldDeadlines). */
  protected readonly heldDeadlines = new HeldDeadlines();

  /** True once commands can be routed (command table and slot owners known). */
  protected abstract get routable(): boolean;
  /** Sends a command whose keys all hash to `slot`. */
  protected abstract sendToSlot(slot: number, encoded: Encoded, sink: ReplySink, flags: number): void;
  /** Sends a command that has no keys (or refuses it). */
  protected abstract sendKeyless(encoded: Encoded, sink: ReplySink, name: string): void;
  abstract waitForRoom(): Promise<void>;
  /** Resolves once commands can be routed (command table, and for a cluster the slot map). */
  abstract whenReady(): Promise<void>;
  /** A connection to every master (every shard): for fan-out, and for features that open their own. */
  abstract get masterConnections(): Connection[];
  /** The connection of the master (shard) that owns `key`'s slot. */
  abstract connectionFor(key: string | Buffer | number): Connection;
  /**
   * For features that write straight into nodes' FIFOs (massInsert): the master connection
   * that owns `slot` in the current map, or undefined when none is known.
   */
  abstract connectionForSlot(slot: number): Connection | undefined;
  /**
   * Sends a command of a known slot through the router, as submit() would after finding the
   * slot: a cluster follows MOVED / ASK and waits for a new owner under `sink`. For a command
   * that came back from a node's FIFO redirected or unwritten.
   */
  [kSubmitToSlot](slot: number, encoded: Encoded, sink: ReplySink): void {
    if (this.closed) sink.rejectReply(this.closedError(sink.command));
    else this.sendToSlot(slot, encoded, sink, CommandFlag.Write);
  }

  /** Sends a block whose keys all hash to `slot` (see submitBlock). */
  protected abstract sendBlockToSlot(slot: number, block: CommandBlock, sink: ReplySink): void;

  /** @internal The server's command table (key specs, flags), once read: for the client-side cache. */
  get commandTable(): CommandTable | undefined {
    return this.table;
  }

  /** @internal True once the router was closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal Told when slots change owner (resharding, failover): the client-side cache drops them. */
  onSlotsMoved: ((slots: readonly number[]) => void) | undefined = undefined;

  /** True once kBlockSlot can answer (the command table is known). */
  get canRouteBlocks(): boolean {
    return this.routable;
  }

  /**
   * The one slot all keys of a block of commands (each [name, ...args]) hash to, checked before
   * anything is written: a RoutingError if they span slots, if the block has no key, or if a
   * command in it would change the connection's state. Only once canRouteBlocks is true.
   */
  [kBlockSlot](commands: ReadonlyArray<ArrayLike<unknown>>): number | RoutingError {
    const table = this.table!;
    let slot = -1;
    for (let c = 0; c < commands.length; c++) {
      const cmd = commands[c]!;
      const name = String(cmd[0]);
      const info = table.lookup(name, cmd, 1);
      if (info === undefined) continue; // unknown to the server: it refuses it while queueing (EXECABORT)
      if (CONNECTION_STATE.has(info.name.split('|')[0]!.toUpperCase())) {
        return new RoutingError(`${name.toUpperCase()} (command ${c} of the block) cannot go inside a MULTI block; the block's MULTI and EXEC are added for you`);
      }
      for (const k of table.keyIndices(info, cmd, 1)) {
        const s = keySlot(cmd[k]);
        if (slot === -1) slot = s;
        else if (s !== slot) {
          return new RoutingError(`the keys of this block hash to different slots (${slot} and ${s}, command ${c}: ${name.toUpperCase()}) on this ${this.kind}; ` +
            'a MULTI block runs on one node: put its keys under one hash tag, e.g. {user:1}:a and {user:1}:b');
        }
      }
    }
    if (slot === -1) return new RoutingError(`this block has no key, so it has no node on this ${this.kind}; send it to one connection (${this.kind === 'cluster' ? 'cluster' : 'shards'}.connectionFor(key) or masterConnections)`);
    return slot;
  }

  /**
   * Submits a block already checked by kBlockSlot to the connection that owns `slot`. This is
   * the only way MULTI/EXEC pass a router: as one piece, never as separate routed commands.
   */
  [kSubmitBlock](slot: number, block: CommandBlock, sink: ReplySink): void {
    if (this.closed) sink.rejectReply(this.closedError('MULTI'));
    else this.sendBlockToSlot(slot, block, sink);
  }

  submit(encoded: Encoded, sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number): void {
    if (this.routable && this.parked.length === 0) {
      this.route(encoded, sink, name, args, from);
    } else if (this.closed) {
      sink.rejectReply(this.closedError(name));
    } else {
      // The caller may reuse its array once send() returns; keep the arguments themselves.
      this.parked.push({ encoded, sink, name, args: Array.prototype.slice.call(args, from) });
      this.heldDeadlines.hold(sink, `for this ${this.kind} to learn its ${this.kind === 'cluster' ? 'slot map' : 'servers\' commands'}`);
    }
  }

  /**
   * @internal For loop.close(), which is graceful: resolves once nothing waits here for the
   * router to become routable (the commands went out, or were rejected because no server
   * answered within connectTimeout), so commands sent just before close() are not lost.
   */
  settleParked(): Promise<void> {
    if (!this.parkedUnsettled || this.closed) return Promise.resolve();
    return this.whenReady().then(ignore, ignore);
  }

  /** Whether a parked command still waits for its outcome (one may have timed out meanwhile). */
  protected get parkedUnsettled(): boolean {
    for (let i = 0; i < this.parked.length; i++) if (!this.parked.peekAt(i)!.sink.settled) return true;
    return false;
  }

  /**
   * @internal For loop.close(): resolves once every command sent through this router has left
   * it for good (answered, or failed as it would have), redirections included. A shard set
   * only ever holds commands that wait for its command table.
   */
  settle(): Promise<void> {
    return this.settleParked();
  }

  /** Routes what waited for the router to become routable, in order. */
  protected releaseParked(): void {
    while (this.parked.length !== 0 && this.routable) {
      const p = this.parked.shift()!;
      this.heldDeadlines.release(p.sink);
      if (!p.sink.settled) this.route(p.encoded, p.sink, p.name, p.args, 0);
    }
  }

  /** Rejects what waits here (the router is closing, or gave up on finding its servers). */
  protected rejectParked(why: (name: string) => Error): void {
    while (this.parked.length !== 0) {
      const p = this.parked.shift()!;
      this.heldDeadlines.release(p.sink);
      if (!p.sink.settled) p.sink.rejectReply(why(p.name));
    }
  }

  protected get parkedCount(): number {
    return this.parked.length;
  }

  /**
   * The one error of a closed router, whatever reaches it (a command, a block, whenReady()): a
   * RoutingError, so that nothing that retries on ClientStateError (a never-written command,
   * SCAN) waits for a router that will not come back.
   */
  protected closedError(name: string): Error {
    return new RoutingError(`${name}: this ${this.kind} is closed`);
  }

  /** Finds the slot (or slots) of the command and sends it, split per slot when allowed. */
  protected route(encoded: Encoded, sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number): void {
    const table = this.table!;
    const info = table.lookup(name, args, from);
    if (info === undefined) {
      this.sendKeyless(encoded, sink, name); // not a command this server knows: it will say so
      return;
    }
    if (info.firstArgIsTheKey && args.length > from) {
      if (info.flags & CommandFlag.Blocking) {
        const refusal = this.refusal(info, name, args, from);
        if (refusal !== undefined) { sink.rejectReply(refusal); return; }
      }
      this.sendToSlot(keySlot(args[from]), encoded, sink, info.flags);
      return;
    }
    const refusal = this.refusal(info, name, args, from);
    if (refusal !== undefined) {
      sink.rejectReply(refusal);
      return;
    }
    const keys = table.keyIndices(info, args, from);
    if (keys.length === 0) {
      // FUNCTION LOAD, SCRIPT LOAD...: the server's request policy is "every shard".
      if (toEveryMaster(info.name)) sendToEveryMaster(this.masterConnections, encoded, sink, this.kind);
      else this.sendKeyless(encoded, sink, name);
      return;
    }
    const slot = keySlot(args[keys[0]!]);
    let slots: number[] | undefined;
    for (let k = 1; k < keys.length; k++) {
      const s = keySlot(args[keys[k]!]);
      if (s !== slot && slots === undefined) {
        slots = new Array<number>(keys.length).fill(slot, 0, k);
      }
      if (slots !== undefined) slots[k] = s;
    }
    if (slots === undefined) {
      this.sendToSlot(slot, encoded, sink, info.flags);
      return;
    }
    const kind = splitKind(name);
    if (kind === undefined) {
      const distinct = [...new Set(slots)];
      sink.rejectReply(new RoutingError(
        `${name.toUpperCase()}: its keys hash to different slots (${distinct.slice(0, 4).join(', ')}${distinct.length > 4 ? ', ...' : ''}) on this ${this.kind}; ` +
        'put them under one hash tag, e.g. {user:1}:a and {user:1}:b, so they share a slot'));
      return;
    }
    this.splitCount++;
    for (const part of splitBySlot(kind, name, args, keys, slots, sink)) this.sendToSlot(part.slot, part.encoded, part.sink, info.flags);
  }

  /**
   * For features that must know where a command goes before sending it (massInsert: a keyless
   * command in a load is an error, not a guess; with replies off it routes by hand): the index
   * in `args` of the command's first key when all its keys hash to one slot; -1 when they span
   * slots and the command may be split (MGET, MSET, DEL...); otherwise the RoutingError that
   * says why it has no single place (keyless, unknown, refused, cross-slot). Needs the command
   * table: call it after whenReady().
   */
  [kKeyOf](name: string, args: ArrayLike<unknown>, from: number): number | RoutingError {
    const table = this.table;
    if (table === undefined) return new RoutingError(`${name}: this ${this.kind} does not know the server's commands yet; await whenReady() first`);
    const info = table.lookup(name, args, from);
    if (info === undefined) return new RoutingError(`${name}: not a command the servers of this ${this.kind} list, so its keys cannot be found`);
    if (info.firstArgIsTheKey && args.length > from && (info.flags & CommandFlag.Blocking) === 0) return from;
    const refusal = this.refusal(info, name, args, from);
    if (refusal !== undefined) return refusal as RoutingError;
    const keys = table.keyIndices(info, args, from);
    if (keys.length === 0) {
      return new RoutingError(`${name}: a command without keys has no node of its own on a ${this.kind}; send it to each node by hand (masterConnections)`);
    }
    const slot = keySlot(args[keys[0]!]);
    for (let k = 1; k < keys.length; k++) {
      if (keySlot(args[keys[k]!]) !== slot) {
        return splitKind(name) !== undefined ? -1 : new RoutingError(
          `${name.toUpperCase()}: its keys hash to different slots on this ${this.kind}; put them under one hash tag, e.g. {user:1}:a and {user:1}:b`);
      }
    }
    return keys[0]!;
  }

  /** Why this command cannot go through a shared, routed connection, if it cannot. */
  private refusal(info: CommandInfo, name: string, args: ArrayLike<unknown>, from: number): Error | undefined {
    const upper = info.name.toUpperCase();
    if (CONNECTION_STATE.has(upper)) {
      return new RoutingError(`${upper} is refused on a ${this.kind}: it changes the state of a connection other commands share; ` +
        `use loop.multi() for atomic blocks, or ${this.kind === 'cluster' ? 'cluster' : 'shards'}.connectionFor(key) to pick a connection yourself`);
    }
    if (info.flags & CommandFlag.Blocking && !(isStreamRead(upper) && !hasBlockArgument(args, from))) {
      return new RoutingError(`${upper} is refused on a ${this.kind}: a blocking command would hold up every command behind it on the ` +
        `shared connection; open a connection of its own to the node that owns the key (${this.kind === 'cluster' ? 'cluster' : 'shards'}.connectionFor(key) tells which)`);
    }
    return undefined;
  }
}

const ignore = (): void => {};

function isStreamRead(upper: string): boolean {
  return upper === 'XREAD' || upper === 'XREADGROUP';
}

/** XREAD/XREADGROUP block only with a BLOCK argument (before STREAMS). */
function hasBlockArgument(args: ArrayLike<unknown>, from: number): boolean {
  for (let i = from; i < args.length; i++) {
    const a = args[i];
    const text = typeof a === 'string' ? a.toUpperCase() : a instanceof Uint8Array ? Buffer.from(a).toString('latin1').toUpperCase() : '';
    if (text === 'BLOCK') return true;
    if (text === 'STREAMS') return false;
  }
  return false;
}
