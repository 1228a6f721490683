// What tracing costs when somebody listens: `run` with a subscriber on redloop:command that does
// what a metrics exporter does at least (a start time per command, a duration when it settles),
// attached only while `run` runs, so the other contestants of the same process run untraced.
import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { CHANNELS, type CommandMessage } from '../lib/index.js';

const started = new WeakMap<CommandMessage, number>();
let settled = 0;
let totalMs = 0;
const ignore = (): void => {};
const handlers = {
  start(m: CommandMessage) { started.set(m, performance.now()); },
  end: ignore,
  asyncStart: ignore,
  error: ignore,
  asyncEnd(m: CommandMessage) {
    const t = started.get(m);
    if (t === undefined) return;
    settled++;
    totalMs += performance.now() - t;
  },
};

export async function traced<T extends { ops: number }>(run: () => Promise<T>): Promise<T> {
  const channel = diagnostics.tracingChannel<unknown, CommandMessage>(CHANNELS.command);
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
