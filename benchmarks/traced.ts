// What tracing costs when somebody listens: `run` with a subscriber on redloop:command that does
// what a metrics exporter does at least (a start time per command, a duration when it settles),
// attached only while `run` runs, so the other contestants of the same process run untraced.
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { CHANNELS, type CommandMessage } from '../lib/index.js';

// The start time rides on the message (a symbol-keyed property, as APM agents do); a WeakMap
// keyed by the message works too, and costs about as much again as redloop's own share.
const kStarted = Symbol('started');
type Timed = CommandMessage & { [kStarted]?: number };
let settled = 0;
let totalMs = 0;
const ignore = (): void => {};
const handlers = {
  start(m: Timed) { m[kStarted] = performance.now(); },
  end: ignore,
  asyncStart: ignore,
  error: ignore,
  asyncEnd(m: Timed) {
    const t = m[kStarted];
    if (t === undefined) return;
    settled++;
    totalMs += performance.now() - t;
  },
};

export async function traced<T extends { ops: number }>(run: () => Promise<T>): Promise<T> {
  const channel = diagnostics.tracingChannel<unknown, Timed>(CHANNELS.command);
  settled = 0;
  totalMs = 0;
  channel.subscribe(handlers);
  try {
    const result = await run();
    if (settled < result.ops) throw new Error(`traced: ${settled} of ${result.ops} commands reached asyncEnd`);
    return result;
  } finally {
    channel.unsubscribe(handlers);
  }
}
