/**
 * Explicit batches, for people who come from pipeline().exec(): every command is sent at once
 * (so on a cluster or shard set each node's share leaves in one write, all nodes in parallel,
 * with no threads: redis-py-cluster's pipeline) and the outcomes come back in order, one per
 * command. A failed command is an outcome, never a rejection of the batch.
 */
import type { CommandTarget } from '../connection/target.js';
import { Future, type GroupWaiter } from '../core/future.js';
import type { Arg } from '../protocol/encoder.js';
import type { FeatureLoop } from '../core/loop-port.js';

/** One outcome of loop.batch(): the reply, or the error that command got. */
export type Settled<T = unknown> = { ok: true; value: T } | { ok: false; error: Error };

export function batch(sender: FeatureLoop, target: CommandTarget, commands: ReadonlyArray<readonly [string, ...Arg[]]>): Promise<Settled[]> {
  if (!Array.isArray(commands)) {
    return Promise.reject(new TypeError("batch(): the commands must be an array of commands like [['SET', 'a', 1], ['GET', 'a']]"));
  }
  const futures = new Array<PromiseLike<unknown>>(commands.length);
  // All sent in this synchronous run: one write per connection at the end of the tick.
  for (let i = 0; i < commands.length; i++) futures[i] = sender.send(target, commands[i]!);
  return outcomes(futures);
}

/**
 * Every outcome, in order; never rejects because one failed. One group listens to every future
 * (Future.watch, as Future.all does): no then(), no closures and no Promise per command, and the
 * outcomes are built once, when the last reply is in.
 */
function outcomes(futures: readonly PromiseLike<unknown>[]): Promise<Settled[]> {
  let resolve!: (out: Settled[]) => void;
  const promise = new Promise<Settled[]>((r) => { resolve = r; });
  Future.watch(futures, new Outcomes(futures, resolve));
  return promise;
}

class Outcomes implements GroupWaiter {
  private readonly out: Array<Settled | undefined>;
  private remaining: number;

  constructor(private readonly items: readonly PromiseLike<unknown>[], private readonly resolve: (out: Settled[]) => void) {
    this.out = new Array<Settled | undefined>(items.length);
    this.remaining = items.length;
    if (items.length === 0) this.finish();
  }

  settled(): void {
    if (--this.remaining === 0) this.finish();
  }

  resolveAt(index: number, value: unknown): void {
    this.out[index] = { ok: true, value };
    if (--this.remaining === 0) this.finish();
  }

  rejectAt(index: number, reason: unknown): void {
    this.out[index] = { ok: false, error: reason as Error };
    if (--this.remaining === 0) this.finish();
  }

  private finish(): void {
    const { items, out } = this;
    for (let i = 0; i < out.length; i++) {
      if (out[i] !== undefined) continue;
      const f = items[i] as Future<unknown>; // only futures were left for the end
      const error = f.error;
      out[i] = error !== undefined ? { ok: false, error } : { ok: true, value: f.value };
    }
    this.resolve(out as Settled[]);
  }
}
