// The JSON record of a run and where it is written. A run writes to benchmarks/results/runs/
// (ignored by git): latest.{json,svg} for a full run, quick.* for --quick, partial.* for a
// filtered or scaled one, and a timestamped copy of each. Only --publish writes the committed
// copy the README shows, benchmarks/results/published.{json,svg}. A run against another server
// family than Redis (REDLOOP_SERVER=valkey) writes the same names with -valkey appended
// (published-valkey.json, latest-valkey.json...), next to the Redis ones.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESULTS_DIR, type BenchOptions } from './options.js';
import type { TargetResult } from './report.js';
import type { WorkloadResult } from './runner.js';
import { renderSvg } from './svg.js';
import { publishedMarkdown } from './markdown.js';

export interface BenchMeta {
  date: string;
  node: string;
  /** The redis_version the server reports (on Valkey 8: 7.2.4, the Redis release it is compatible with). */
  redis: string;
  /** Which server ran: family ('redis', 'valkey') and its own release (absent in runs before it was recorded: Redis). */
  server?: { family: string; version: string };
  platform: string;
  cpus: string;
  gitCommit?: string;
  /** Tracked files differed from that commit: the numbers are not quite the commit's. */
  gitDirty?: boolean;
  servers: string;
  /** 1-minute load average when the run started and ended: other busy processes make noise. */
  loadAverage: { start: number; end?: number };
  options: Omit<BenchOptions, 'urls' | 'outDir' | 'help' | 'json' | 'publish' | 'check'>;
  durationSeconds?: number;
}

export interface BenchRecord {
  meta: BenchMeta;
  workloads: WorkloadResult[];
  targets: TargetResult[];
}

/** "redis 7.0.15", "valkey 8.0.1": what the run's server was. */
export function serverLabel(m: BenchMeta): string {
  return m.server === undefined ? `redis ${m.redis}` : `${m.server.family} ${m.server.version}`;
}

export function collectMeta(
  opts: BenchOptions,
  server: { family: string; version: string; redisVersion: string },
  servers: string,
): BenchMeta {
  const git = (...args: string[]): string | undefined => {
    try {
      return execFileSync('git', args, { cwd: RESULTS_DIR, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      return undefined;
    }
  };
  const gitCommit = git('rev-parse', '--short', 'HEAD');
  const status = gitCommit === undefined ? undefined : git('status', '--porcelain', '--untracked-files=no');
  const cpu = os.cpus();
  const { urls: _u, outDir: _o, help: _h, json: _j, publish: _p, check: _c, ...options } = opts;
  return {
    date: new Date().toISOString(),
    node: process.version,
    redis: server.redisVersion,
    server: { family: server.family, version: server.version },
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: `${cpu.length} x ${cpu[0]?.model ?? 'unknown'}`,
    gitCommit,
    gitDirty: status === undefined ? undefined : status !== '',
    servers,
    loadAverage: { start: Math.round(os.loadavg()[0]! * 100) / 100 },
    options,
  };
}

/** '' for Redis, '-valkey' for Valkey: what a run's file names end with. */
export function familySuffix(m: BenchMeta): string {
  const family = m.server?.family ?? 'redis';
  return family === 'redis' ? '' : `-${family}`;
}

export function resultName(opts: BenchOptions, meta?: BenchMeta): string {
  const filtered = (opts.only?.length ?? 0) > 0 || (opts.contestants?.length ?? 0) > 0 || opts.scale !== 1;
  const suffix = meta === undefined ? '' : familySuffix(meta);
  if (filtered) return `partial${suffix}`;
  return `${opts.quick ? 'quick' : 'latest'}${suffix}`;
}

/** What the chart's subtitle says about the run: when, which commit, which machine. */
export function describeRun(m: BenchMeta): string[] {
  const commit = m.gitCommit === undefined ? 'commit unknown' : `commit ${m.gitCommit}${m.gitDirty ? ' with uncommitted changes' : ''}`;
  return [
    `${m.date.slice(0, 16).replace('T', ' ')} UTC · ${commit}${m.options.quick ? ' · --quick' : ''}${m.durationSeconds !== undefined ? ` · ${Math.round(m.durationSeconds)} s` : ''}`,
    `${m.cpus} · ${m.platform} · node ${m.node} · ${serverLabel(m)} · ${m.servers}`,
  ];
}

function jsonText(record: BenchRecord): string {
  return `${JSON.stringify(record, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/** Writes JSON and SVG to opts.outDir (and the published copy with --publish); returns the paths written. */
export function writeResults(record: BenchRecord, opts: BenchOptions): string[] {
  const name = resultName(opts, record.meta);
  const published = `published${familySuffix(record.meta)}`;
  const stamp = record.meta.date.replace(/[:.]/g, '-');
  fs.mkdirSync(opts.outDir, { recursive: true });
  const json = jsonText(record);
  const svg = renderSvg(record.workloads, describeRun(record.meta));
  const files: Array<[string, string]> = [
    [path.join(opts.outDir, `${name}.json`), json],
    [path.join(opts.outDir, `${name}.svg`), svg],
    [path.join(opts.outDir, `bench-${stamp}-${name}.json`), json],
    [path.join(opts.outDir, `bench-${stamp}-${name}.svg`), svg],
  ];
  if (opts.publish) {
    files.push([path.join(RESULTS_DIR, `${published}.json`), json], [path.join(RESULTS_DIR, `${published}.svg`), svg],
      [path.join(RESULTS_DIR, `${published}.md`), publishedMarkdown(record)]);
  }
  for (const [file, text] of files) fs.writeFileSync(file, text);
  return [...files.slice(0, 2), ...files.slice(4)].map(([file]) => file);
}
