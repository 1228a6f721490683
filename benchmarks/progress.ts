// Progress while the bench runs: a bar on stderr when the run is watched on a terminal, or
// one line per finished workload for logs (CI, `| tee`), where a bar cannot be drawn and the
// table only comes at the end.
import cliProgress from 'cli-progress';
import type { WorkloadResult } from './runner.js';

export interface Progress {
  start(total: number): void;
  step(task: string): void;
  /** Mark one run done. */
  done(): void;
  stop(): void;
}

class TtyProgress implements Progress {
  private readonly bar = new cliProgress.SingleBar({
    format: 'bench {bar} {value}/{total} runs | {duration_formatted} | {task}',
    barsize: 24,
    hideCursor: true,
    clearOnComplete: true,
    stream: process.stderr,
    etaBuffer: 20,
  }, cliProgress.Presets.shades_classic);

  start(total: number): void { this.bar.start(total, 0, { task: 'starting' }); }
  step(task: string): void { this.bar.update({ task }); }
  done(): void { this.bar.increment(); }
  stop(): void { this.bar.stop(); }
}

const silent: Progress = { start() {}, step() {}, done() {}, stop() {} };

export function createProgress(stream: NodeJS.WriteStream = process.stderr, enabled = stream.isTTY === true): Progress {
  return enabled ? new TtyProgress() : silent;
}

/** "[2/5] ping-window, 41 s: redloop 2,747,478/s, ioredis-auto 388,778/s, ..." */
export function workloadLine(result: WorkloadResult, done: number, total: number, seconds: number): string {
  const each = result.contestants.map((c) => {
    if (c.skipped) return `${c.id} skipped`;
    if (c.error) return `${c.id} FAILED`;
    return `${c.id} ${Math.round(c.median).toLocaleString('en-US')}/s`;
  });
  return `[${done}/${total}] ${result.id}, ${Math.round(seconds)} s: ${each.join(', ')}`;
}
