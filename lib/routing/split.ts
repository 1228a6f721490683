/**
 * The cross-slot splitter: MGET, MSET, DEL, UNLINK, EXISTS and TOUCH whose keys span hash
 * slots become one command per slot, sent in parallel; their replies merge into the caller's
 * sink (MGET in argument order, MSET 'OK', the others summed). No other command is split:
 * the server could not run it atomically either.
 */
import { ForwardingSink, type ReplySink } from '../base/reply-sink.js';
import { encodeCommand, type Encoded } from '../protocol/encoder.js';

type SplitKind = 'mget' | 'mset' | 'count';

const SPLITTABLE: Record<string, SplitKind> = {
  MGET: 'mget', MSET: 'mset', DEL: 'count', UNLINK: 'count', EXISTS: 'count', TOUCH: 'count',
};

/** How a command merges when split, or undefined when it may not be split. */
export function splitKind(name: string): SplitKind | undefined {
  return name.length <= 6 ? SPLITTABLE[name.toUpperCase()] : undefined;
}

/** One per-slot piece of a split command. */
export interface SplitPart {
  slot: number;
  encoded: Encoded;
  sink: ReplySink;
}

/**
 * Splits a command whose keys (at `keyIndices` of `args`, with their `slots`) span slots.
 * The parts' sinks settle `sink` once all have answered, or at the first failure.
 */
export function splitBySlot(
  kind: SplitKind, name: string, args: ArrayLike<unknown>, keyIndices: readonly number[], slots: readonly number[], sink: ReplySink,
): SplitPart[] {
  const bySlot = new Map<number, number[]>(); // slot -> positions in keyIndices
  for (let k = 0; k < keyIndices.length; k++) {
    const list = bySlot.get(slots[k]!);
    if (list === undefined) bySlot.set(slots[k]!, [k]);
    else list.push(k);
  }
  const merge = new SplitMerge(kind, sink, bySlot.size, keyIndices.length);
  const parts: SplitPart[] = [];
  for (const [slot, positions] of bySlot) {
    const partArgs: unknown[] = [];
    for (const k of positions) {
      partArgs.push(args[keyIndices[k]!]);
      if (kind === 'mset') partArgs.push(args[keyIndices[k]! + 1]);
    }
    // The arguments passed the encoder already as part of the whole command.
    const encoded = encodeCommand(name, partArgs) as Encoded;
    parts.push({ slot, encoded, sink: new SplitPartSink(merge, positions) });
  }
  return parts;
}

class SplitMerge {
  private left: number;
  private readonly values: unknown[] | undefined;
  /** A bigint once a part answers with one (bigInt per command or on the connections), so the count stays exact. */
  private sum: number | bigint = 0;
  done = false;

  constructor(private readonly kind: SplitKind, readonly sink: ReplySink, parts: number, keys: number) {
    this.left = parts;
    this.values = kind === 'mget' ? new Array(keys) : undefined;
  }

  partReplied(positions: readonly number[], reply: unknown): void {
    if (this.done) return;
    if (this.kind === 'mget') {
      const replies = reply as unknown[];
      for (let i = 0; i < positions.length; i++) this.values![positions[i]!] = replies[i];
    } else if (this.kind === 'count') {
      this.sum = typeof reply === 'bigint' ? BigInt(this.sum) + reply : typeof this.sum === 'bigint' ? this.sum + BigInt(Number(reply)) : this.sum + Number(reply);
    }
    if (--this.left !== 0) return;
    this.done = true;
    this.sink.resolveReply(this.kind === 'mget' ? this.values : this.kind === 'mset' ? 'OK' : this.sum);
  }

  partFailed(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.sink.rejectReply(err);
  }
}

class SplitPartSink extends ForwardingSink {
  settledHere = false;
  constructor(private readonly merge: SplitMerge, private readonly positions: readonly number[]) {
    super(merge.sink);
  }
  override get settled(): boolean { return this.settledHere || this.merge.done || this.user.settled; }
  resolveReply(reply: unknown): void {
    if (this.settledHere) return;
    this.settledHere = true;
    this.merge.partReplied(this.positions, reply);
  }
  rejectReply(err: Error): void {
    if (this.settledHere) return;
    this.settledHere = true;
    this.merge.partFailed(err);
  }
}
