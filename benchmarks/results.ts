// The JSON record of a run and where it is written: benchmarks/results/latest.{json,svg}
// for a full run, quick.* for --quick, partial.* for a filtered or scaled one, and
// a timestamped copy of each under results/tmp/ (ignored by git).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './options.js';
import type { TargetResult } from './report.js';
import type { WorkloadResult } from './runner.js';
import { renderSvg } from './svg.js';

export interface BenchMeta {
  date: string;
  node: string;
  redis: string;
  platform: string;
  cpus: string;
  gitCommit?: string;
  servers: string;
  /** 1-minute load average when the run started and ended: other busy processes make noise. */
  loadAverage: { start: number; end?: number };
  options: Omit<BenchOptions, 'urls' | 'outDir' | 'help' | 'json'>;
  durationSeconds?: number;
}

export interface BenchRecord {
  meta: BenchMeta;
  workloads: WorkloadResult[];
  targets: TargetResult[];
}

export function collectMeta(opts: BenchOptions, redis: string, servers: string): BenchMeta {
  let gitCommit: string | undefined;
  try {
    gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    gitCommit = undefined;
  }
  const cpu = os.cpus();
  const { urls: _u, outDir: _o, help: _h, json: _j, ...options } = opts;
  return {
    date: new Date().toISOString(),
    node: process.version,
    redis,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: `${cpu.length} x ${cpu[0]?.model ?? 'unknown'}`,
    gitCommit,
    servers,
    loadAverage: { start: Math.round(os.loadavg()[0]! * 100) / 100 },
    options,
  };
}

export function resultName(opts: BenchOptions): string {
  const filtered = (opts.only?.length ?? 0) > 0 || (opts.contestants?.length ?? 0) > 0 || opts.scale !== 1;
  if (filtered) return 'partial';
  return opts.quick ? 'quick' : 'latest';
}

/** Write JSON and SVG; returns the paths written. */
export function writeResults(record: BenchRecord, opts: BenchOptions): string[] {
  const name = resultName(opts);
  const stamp = record.meta.date.replace(/[:.]/g, '-');
  const historyDir = path.join(opts.outDir, 'tmp');
  fs.mkdirSync(historyDir, { recursive: true });
  const json = `${JSON.stringify(record, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
  const m = record.meta;
  const svg = renderSvg(record.workloads,
    `${m.date.slice(0, 19)}Z · node ${m.node} · redis ${m.redis} · ${m.cpus} · ${m.servers}${m.options.quick ? ' · --quick' : ''}`);
  const files = [
    [path.join(opts.outDir, `${name}.json`), json],
    [path.join(opts.outDir, `${name}.svg`), svg],
    [path.join(historyDir, `bench-${stamp}-${name}.json`), json],
    [path.join(historyDir, `bench-${stamp}-${name}.svg`), svg],
  ] as const;
  for (const [file, text] of files) fs.writeFileSync(file, text);
  return files.slice(0, 2).map(([file]) => file);
}
