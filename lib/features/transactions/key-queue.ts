/**
 * Transactions of one loop that name the same key on the same node run one after another.
 *
 * Optimistic locking only pays off when the writers it guards against are somewhere else: two
 * callers of this loop that WATCH the same balance, run side by side, abort each other (each one's
 * EXEC fires the other's WATCH) and, with enough of them, starve. The loop knows its own
 * contenders, so it queues them per node and key, in arrival order: inside the queue an EXEC can
 * only answer null because of a writer outside the loop (another process, or this one writing the
 * key without going through transaction()). Those aborts are retried after a jittered backoff.
 *
 * A transaction's callback that asks for the turn it already holds (a nested transaction on the
 * same key and node) would wait for itself forever; `heldHere` tells it at once instead.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import Denque from 'denque';
import type { Arg } from '../../protocol/encoder.js';

const NOW: Promise<void> = Promise.resolve();

/** A turn the current async context runs inside; `outer` is the one it was taken inside of. */
export interface HeldTurn {
  readonly queues: KeyQueues;
  readonly id: string;
  readonly outer: HeldTurn | undefined;
  /** False once the holder left: a timer or promise made inside it may outlive the turn. */
  active: boolean;
}

/**
 * The turns held by the code that runs inside them (a transaction's callback and everything it
 * awaits or starts), so that a caller already inside the turn of `id` is told at once instead of
 * queueing behind itself. An enabled AsyncLocalStorage makes Node 20 run a hook for every promise
 * the process creates (every Future: PING windows measured ~25% slower), so it exists only while
 * some transaction holds a turn: made by the first, disabled when the last one leaves.
 */
let heldTurns: AsyncLocalStorage<HeldTurn> | undefined;
/** Turns held now, over every loop: the storage is disabled once this stays at 0 for a while. */
let holding = 0;
/** How long no turn may be held before the storage is disabled. */
const STORAGE_IDLE_MS = 200;
let idleCheck: NodeJS.Timeout | undefined;

function disableIfIdle(): void {
  idleCheck = undefined;
  if (holding !== 0 || heldTurns === undefined) return;
  heldTurns.disable(); // the last enabled storage: Node stops its promise hook
  heldTurns = undefined;
}

/** A queue per (node, key): `enter` resolves when the caller's turn comes; `leave` passes it on. */
export class KeyQueues {
  private readonly queues = new Map<string, Denque<() => void>>();

  /** Whether the code running now is inside the turn of `id` (it would wait for itself in `enter`). */
  heldHere(id: string): boolean {
    for (let t = heldTurns?.getStore(); t !== undefined; t = t.outer) {
      if (t.active && t.id === id && t.queues === this) return true;
    }
    return false;
  }

  /**
   * Runs `fn(a, b)` inside the turn of `id`, which the caller holds (entered and not yet left).
   * The caller passes the returned turn to release() when it leaves.
   */
  runHolding<A, B, T>(id: string, fn: (a: A, b: B) => T, a: A, b: B): { turn: HeldTurn; result: T } {
    heldTurns ??= new AsyncLocalStorage<HeldTurn>();
    const turn: HeldTurn = { queues: this, id, outer: heldTurns.getStore(), active: true };
    holding++;
    return { turn, result: heldTurns.run(turn, fn, a, b) };
  }

  /**
   * The holder of `turn` left it (once). With no turn held anywhere, the storage goes away a
   * little later, if none was taken meanwhile: turning Node's promise hook off and on again at
   * every turn of a busy key cost more than the hook itself (20 contending callers: 3,053
   * increments/s that way, 4,237/s with the storage kept, one bench run each).
   */
  release(turn: HeldTurn): void {
    if (!turn.active) return;
    turn.active = false;
    if (--holding === 0 && heldTurns !== undefined && idleCheck === undefined) {
      idleCheck = setTimeout(disableIfIdle, STORAGE_IDLE_MS);
      idleCheck.unref();
    }
  }

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

/** Whether the turn storage exists now (for tests: it must be gone once no turn is held). */
export function turnStorageEnabled(): boolean {
  return heldTurns !== undefined;
}
