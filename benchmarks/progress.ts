// One progress line on stderr while the bench runs, only when stderr is a terminal.
import cliProgress from 'cli-progress';

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

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  return stream.isTTY ? new TtyProgress() : silent;
}
