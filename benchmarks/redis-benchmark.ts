// redis-benchmark, the C reference, run with the same command and pipeline depth as the
// workload (valkey-benchmark when REDLOOP_SERVER=valkey: harness/servers.ts chooses). Its rate
// is self-reported from its --csv output; it does not check replies.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isMissingBinary, missingBinaryMessage, serverBinaries } from '../harness/servers.js';
import type { Endpoint } from './types.js';

const execFileAsync = promisify(execFile);

let found: Promise<string | undefined> | undefined;

/** undefined when redis-benchmark runs here, else why not. */
export function redisBenchmarkMissing(): Promise<string | undefined> {
  const bins = serverBinaries();
  found ??= execFileAsync(bins.benchmark, ['--version']).then(
    () => undefined,
    (err: unknown) => (isMissingBinary(err) ? missingBinaryMessage('benchmark', bins) : `${bins.benchmark} --version failed: ${(err as Error).message}`),
  );
  return found;
}

export interface RedisBenchmarkRun {
  requests: number;
  pipeline: number;
  clients?: number;
  /** -t tests (ignored by redis-benchmark when a command is given). */
  tests?: string[];
  command?: string[];
  keyspace?: number;
  dataSize?: number;
}

export interface RedisBenchmarkRow {
  test: string;
  rps: number;
}

export function parseRedisBenchmarkCsv(csv: string): RedisBenchmarkRow[] {
  const rows: RedisBenchmarkRow[] = [];
  for (const line of csv.split(/\r?\n/)) {
    const cells = line.split(',').map((c) => c.replace(/^"|"$/g, ''));
    if (cells.length < 2 || cells[0] === 'test') continue;
    const rps = Number(cells[1]);
    if (!(Number.isFinite(rps) && rps > 0)) {
      throw new Error(`redis-benchmark reported rps "${cells[1]}" for ${cells[0]}: the run was too short for its millisecond clock`);
    }
    rows.push({ test: cells[0]!, rps });
  }
  return rows;
}

export async function runRedisBenchmark(e: Endpoint, run: RedisBenchmarkRun): Promise<RedisBenchmarkRow[]> {
  const args = ['-h', e.host, '-p', String(e.port), '-n', String(run.requests), '-P', String(run.pipeline),
    '-c', String(run.clients ?? 1), '--csv'];
  if (e.password !== undefined) args.push('-a', e.password);
  if (e.username !== undefined) args.push('--user', e.username);
  if (e.db !== 0) args.push('--dbnum', String(e.db));
  if (run.keyspace !== undefined) args.push('-r', String(run.keyspace));
  if (run.dataSize !== undefined) args.push('-d', String(run.dataSize));
  if (run.tests) args.push('-t', run.tests.join(','));
  if (run.command) args.push(...run.command);
  const { stdout, stderr } = await execFileAsync(serverBinaries().benchmark, args, { maxBuffer: 16 * 1024 * 1024 });
  const rows = parseRedisBenchmarkCsv(stdout);
  if (rows.length === 0) throw new Error(`redis-benchmark printed no result: ${stdout}${stderr}`);
  return rows;
}

/**
 * The same command on every endpoint at once (one redis-benchmark per shard), `requests`
 * split evenly. The batch lasts as long as the slowest shard.
 */
export async function runOnShards(endpoints: readonly Endpoint[], total: number, pipelineCap: number, command: string[]): Promise<{ ops: number; seconds: number }> {
  const per = splitEvenly(total, endpoints.length);
  const runs = await Promise.all(endpoints.map((e, i) => per[i]! > 0
    ? runRedisBenchmark(e, { requests: per[i]!, pipeline: Math.min(per[i]!, pipelineCap), command })
    : Promise.resolve([])));
  let seconds = 0;
  runs.forEach((rows, i) => {
    if (rows[0]) seconds = Math.max(seconds, per[i]! / rows[0].rps);
  });
  return { ops: total, seconds };
}

export function splitEvenly(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}
