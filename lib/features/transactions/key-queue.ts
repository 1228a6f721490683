/**
 * Transactions of one loop that name the same key on the same node run one after another.
 *
 * Optimistic locking only pays off when the writers it guards against are somewhere else: two
 * callers of this loop that WATCH the same balance, run side by side, abort each other (each one's
 * EXEC fires the other's WATCH) and, with enough of them, starve. The loop knows its own
 * contenders, so it queues them per node and key, in arrival order: inside the queue an EXEC can
 * only answer null because of a writer outside the loop (another process, or this one writing the
 * key without going through transaction()). Those aborts are retried after a jittered backoff.
 */
import Denque from 'denque';
import type { Arg } from '../../protocol/encoder.js';

const NOW: Promise<void> = Promise.resolve();

/** A queue per (node, key): `enter` resolves when the caller's turn comes; `leave` passes it on. */
export class KeyQueues {
  private readonly queues = new Map<string, Denque<() => void>>();

  /** Resolves once nobody ahead of this caller holds `id` (at once when nobody does). */
  enter(id: string): Promise<void> {
    const q = this.queues.get(id);
    if (q === undefined) {
      this.queues.set(id, new Denque());
      return NOW;
    }
    return new Promise<void>((resolve) => q.push(resolve));
  }

  /** The holder of `id` is done: the next caller in line goes, or the queue is dropped. */
  leave(id: string): void {
    const q = this.queues.get(id);
    if (q === undefined) return;
    const next = q.shift();
    if (next === undefined) this.queues.delete(id);
    else next();
  }

  /** Callers waiting behind the holder of `id` (for tests). */
  waiting(id: string): number {
    return this.queues.get(id)?.length ?? 0;
  }
}

/** A key as the server sees it (its bytes), so 'a' and Buffer.from('a') queue together. */
export function keyIdentity(key: Arg): string {
  if (typeof key === 'string') {
    // eslint-disable-next-line no-control-regex
    return /^[\x00-\x7f]*$/.test(key) ? key : Buffer.from(key, 'utf8').toString('latin1');
  }
  if (Buffer.isBuffer(key)) return key.toString('latin1');
  if (key instanceof Uint8Array) return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
  return String(key);
}

/**
 * Full jitter: a delay drawn uniformly from [0, min(max, base * 2^(aborts - 1))], so callers that
 * an outside writer aborted at the same moment do not come back at the same moment.
 */
export function backoffDelay(aborts: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(30, aborts - 1));
  return Math.random() * ceiling;
}
