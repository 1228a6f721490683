/**
 * A target is anything sendCommand accepts: a Connection (the caller picks the shard) or a
 * routing layer (a cluster, a shard set) that picks a Connection from the command's keys.
 * Routing layers may wrap the sink to see a reply (MOVED, ASK) before the user's future does.
 */
import type { Encoded } from '../protocol/encoder.js';
import type { ReplySink } from '../base/reply-sink.js';
import type { kCommandTimedOut } from '../base/internal.js';

export interface CommandTarget {
  /** The EventLoop that owns this target; sendCommand refuses targets of another loop. */
  readonly loop: unknown;
  /** The default command timeout (ms, 0 for none) for commands without their own. */
  readonly commandTimeout: number;
  /** Whether replies decode strings as Buffers unless a command says otherwise. */
  readonly defaultReturnBuffers: boolean;
  /**
   * Queues one encoded command. `name` and `args` (from index `from`) are the original
   * command, for routing layers that need its keys or must send it again elsewhere.
   */
  submit(encoded: Encoded, sink: ReplySink, name: string, args: ArrayLike<unknown>, from: number): void;
  /** Resolves once the target can take more commands without growing memory. */
  waitForRoom(): Promise<void>;
  /**
   * Told when a command sent with its own `timeout` timed out (its sink is already rejected),
   * so a connection with resetOnTimeout can reset; routing layers may pass it on.
   */
  [kCommandTimedOut]?(sink: ReplySink): void;
}
