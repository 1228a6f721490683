/**
 * Explicit batches, for people who come from pipeline().exec(): every command is sent at once
 * (so on a cluster or shard set each node's share leaves in one write, all nodes in parallel,
 * with no threads: redis-py-cluster's pipeline) and the outcomes come back in order, one per
 * command. A failed command is an outcome, never a rejection of the batch.
 */
import type { CommandTarget } from './target.js';
import type { Arg } from './protocol/encoder.js';

/** One outcome of loop.batch(): the reply, or the error that command got. */
export type Settled<T = unknown> = { ok: true; value: T } | { ok: false; error: Error };

/** What batch() needs from the loop: its send(). */
export interface BatchSender {
  send(target: CommandTarget, command: readonly [string, ...Arg[]]): PromiseLike<unknown>;
}

export function batch(sender: BatchSender, target: CommandTarget, commands: ReadonlyArray<readonly [string, ...Arg[]]>): Promise<Settled[]> {
  if (!Array.isArray(commands)) {
    return Promise.reject(new TypeError("batch(): the commands must be an array of commands like [['SET', 'a', 1], ['GET', 'a']]"));
  }
  const futures = new Array<PromiseLike<unknown>>(commands.length);
  // All sent in this synchronous run: one write per connection at the end of the tick.
  for (let i = 0; i < commands.length; i++) futures[i] = sender.send(target, commands[i]!);
  return outcomes(futures);
}

/** Every outcome, in order; never rejects because one failed. */
function outcomes<T>(futures: readonly PromiseLike<T>[]): Promise<Settled<T>[]> {
  return new Promise((resolve) => {
    const out = new Array<Settled<T>>(futures.length);
    let left = futures.length;
    if (left === 0) resolve(out);
    for (let i = 0; i < futures.length; i++) {
      futures[i]!.then(
        (value) => { out[i] = { ok: true, value }; if (--left === 0) resolve(out); },
        (error: Error) => { out[i] = { ok: false, error }; if (--left === 0) resolve(out); },
      );
    }
  });
}
