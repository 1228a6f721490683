// `npm run bench`: provision servers, run the selected workloads, print the table, write
// JSON and SVG. Exit status 1 when any contestant failed (a wrong reply is a bug, not a
// slow run); missed performance targets are reported, and fatal only with --check (or --publish).
import os from 'node:os';
import { parseBenchArgs, USAGE, type BenchOptions } from './options.js';
import { createProgress, workloadLine } from './progress.js';
import { describeTarget, evaluateTargets, formatReport } from './report.js';
import { collectMeta, familySuffix, serverLabel, writeResults, type BenchRecord } from './results.js';
import { plannedRuns, runWorkload, workloadCount, type WorkloadResult } from './runner.js';
import { provision, serverOf } from './servers.js';
import { findWorkloads } from './workloads/index.js';

export async function main(argv: string[]): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const workloads = findWorkloads(opts.only);
  const started = Date.now();
  const servers = await provision({ urls: opts.urls, shards: opts.shards });
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}, stopping servers\n`);
    void servers.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  // Watched on a terminal: a progress bar on stderr. Otherwise (CI, `| tee`): a line per workload,
  // on stdout, or on stderr with --json (stdout is the JSON then).
  const lines = process.stdout.isTTY ? undefined : opts.json ? (process.stderr.isTTY ? undefined : process.stderr) : process.stdout;
  const progress = createProgress(process.stderr, lines === undefined && process.stderr.isTTY === true);
  const results: WorkloadResult[] = [];
  let record: BenchRecord;
  try {
    const server = await serverOf(servers.endpoints[0]!);
    const where = servers.owned
      ? `${servers.endpoints.length} throwaway ${server.family}-server shard(s)`
      : `${servers.endpoints.length} server(s) given by URL`;
    const meta = collectMeta(opts, server, where);
    if (!servers.owned) {
      process.stderr.write('bench: writing set1, set2, k:* and key:* on the given servers; they are deleted afterwards\n');
    }
    progress.start(plannedRuns(workloads, opts));
    for (const [i, w] of workloads.entries()) {
      const workloadStarted = Date.now();
      const result = await runWorkload(w, servers.endpoints, opts, progress);
      results.push(result);
      lines?.write(`${workloadLine(result, i + 1, workloads.length, (Date.now() - workloadStarted) / 1000)}\n`);
      if (!servers.owned && w.cleanup) await w.cleanup(servers.endpoints, workloadCount(w, opts));
    }
    progress.stop();
    meta.durationSeconds = Math.round((Date.now() - started) / 100) / 10;
    meta.loadAverage.end = Math.round(os.loadavg()[0]! * 100) / 100;
    record = { meta, workloads: results, targets: evaluateTargets(workloads, results) };
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await servers.stop();
  }

  const failed = record.workloads.flatMap((w) => w.contestants.filter((c) => c.error).map((c) => `${w.id}/${c.id}: ${c.error}`));
  // A run where a contestant failed is not a chart to show: it is kept in runs/ only.
  const publish = opts.publish && failed.length === 0;
  const files = writeResults(record, { ...opts, publish });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  } else {
    const m = record.meta;
    const header = [
      `redloop bench ${opts.quick ? '--quick ' : ''}· ${m.date} · node ${m.node} · ${serverLabel(m)} · ${m.cpus}`,
      `servers: ${m.servers} · ${m.durationSeconds} s · commit ${m.gitCommit ?? 'n/a'}${m.gitDirty ? ' (with uncommitted changes)' : ''} · load average ${m.loadAverage.start} -> ${m.loadAverage.end}`,
      // The start value is what others were doing; during the run the bench itself keeps ~2 busy.
      ...(m.loadAverage.start > os.cpus().length * 0.75
        ? ['warning: the machine was already busy when the run started; expect noisy numbers.'] : []),
      'ops/s are medians over repetitions; contestants ran interleaved in one process, each on fresh connections.',
      '',
    ].join('\n');
    process.stdout.write(`${formatReport(record.workloads, record.targets, header)}\nresults: ${files.join(', ')}\n`);
  }
  if (failed.length > 0) {
    process.stderr.write(`bench: ${failed.length} contestant run(s) failed:\n  ${failed.join('\n  ')}\n`);
  }
  if (opts.publish && !publish) process.stderr.write('bench: not published (--publish): a contestant failed\n');
  if (publish) {
    const name = `published${familySuffix(record.meta)}`;
    process.stderr.write(`bench: wrote benchmarks/results/${name}.json, .svg and .md, the copy the README shows: commit them, and paste ${name}.md into the README's Benchmarks section\n`);
  }
  const missed = opts.check ? record.targets.filter((t) => t.status !== 'pass') : [];
  if (missed.length > 0) {
    const why = (t: (typeof missed)[number]) => {
      if (t.status !== 'fail') return 'not judged: a contestant it compares did not run';
      const { measured, needed } = describeTarget(t);
      return `${measured}, needs ${needed}`;
    };
    process.stderr.write(`bench --check: ${missed.length} target(s) missed:\n  ${missed.map((t) => `${t.description}: ${why(t)}`).join('\n  ')}\n`);
  }
  return failed.length > 0 || missed.length > 0 ? 1 : 0;
}
