// Small helpers shared by the suites: waiting for events, outcomes and conditions with a time
// bound, so that a bug shows up as a clear failure and never as a hung test.
import { expect } from 'chai';
import type { EventLoop, EventLoopEvents, Subscription } from '../../lib/index.js';

/** Rejects with a message naming `what` if `p` does not settle within `ms`. */
export function within<T>(p: PromiseLike<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    Promise.resolve(p).then(
      (v) => { clearTimeout(timer); resolve(v); },
      (e: unknown) => { clearTimeout(timer); reject(e); },
    );
  });
}

type EventArgs<K extends keyof EventLoopEvents> = Parameters<EventLoopEvents[K]>;

/** The next `event` on the loop whose arguments pass `filter`, within `ms`. */
export function nextEvent<K extends keyof EventLoopEvents>(
  loop: EventLoop, event: K, filter: (...args: EventArgs<K>) => boolean = () => true, ms = 10_000,
): Promise<EventArgs<K>> {
  return within(new Promise<EventArgs<K>>((resolve) => {
    const listener = (...args: unknown[]) => {
      if (!filter(...(args as EventArgs<K>))) return;
      loop.off(event, listener as never);
      resolve(args as EventArgs<K>);
    };
    loop.on(event, listener as never);
  }), ms, `event "${String(event)}"`);
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

/** What a future or promise settled with, as a value (never rejects). */
export function outcome<T>(p: PromiseLike<T>): Promise<Outcome<T>> {
  return Promise.resolve(p).then(
    (value) => ({ ok: true as const, value }),
    (error: Error) => ({ ok: false as const, error }),
  );
}

/** Records every event the loop emits, in order, as [name, ...args]. */
export function recordEvents(loop: EventLoop): Array<[string, ...unknown[]]> {
  const seen: Array<[string, ...unknown[]]> = [];
  for (const name of ['connect', 'ready', 'error', 'close', 'reconnecting', 'end', 'unobservedError'] as const) {
    loop.on(name, ((...args: unknown[]) => { seen.push([name, ...args]); }) as never);
  }
  return seen;
}

/** Resolves on the next turn of the event loop (after pending I/O callbacks). */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The error of a failed outcome (fails the test if it succeeded). */
export function errorOf<E extends Error = Error>(o: Outcome<unknown>): E {
  if (o.ok) throw new Error(`expected a rejection, got ${String(o.value)}`);
  return o.error as E;
}

/** The error `p` rejects with, or null if it resolves (for `expect(await rejection(p)).to...`). */
export function rejection<E extends Error = Error>(p: PromiseLike<unknown>): Promise<E | null> {
  return Promise.resolve(p).then(() => null, (e: E) => e);
}

/**
 * Polls `condition` every `every` ms (default 10) until it is true; rejects naming `what` after
 * `timeout` ms (and stops polling). Not a timing assertion: the bound only keeps a bug from
 * hanging the suite.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, options: { timeout: number; what: string; every?: number }): Promise<void> {
  const deadline = Date.now() + options.timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeout} ms waiting for ${options.what}`);
    await new Promise((r) => setTimeout(r, options.every ?? 10));
  }
}

/**
 * loop.close() while `sub` is open and iterated by a for await: close resolves, the for await
 * ends, no error is reported anywhere, and the subscription's connections are closed.
 */
export async function expectQuietLoopClose(loop: EventLoop, sub: Subscription): Promise<void> {
  const errors: Error[] = [];
  sub.on('error', (e: Error) => errors.push(e));
  loop.on('error', (e: Error) => errors.push(e));
  await sub.ready;
  const iterating = (async () => { for await (const _m of sub) { /* none published */ } })();
  await within(loop.close(), 10_000, 'loop.close()');
  await within(iterating, 5_000, 'the for await to end');
  expect(errors.map((e) => e.message)).to.deep.equal([]);
  expect(sub.isClosed).to.equal(true);
  expect(sub.connections.every((sc) => sc.state === 'closed')).to.equal(true);
}
