// The README's copy of a published run as Markdown (benchmarks/results/published.md): the same
// medians, ratios and targets as the JSON beside it, so the README's table is pasted, not retyped.
import { serverLabel, type BenchRecord } from './results.js';
import { describeTarget, fmtInt, fmtRatio } from './report.js';

export function publishedMarkdown(record: BenchRecord): string {
  const m = record.meta;
  const lines = [
    `A full run (\`npm run bench -- --publish\`) on ${m.date.slice(0, 10)} at commit ${m.gitCommit ?? 'n/a'}${m.gitDirty ? ' (with uncommitted changes)' : ''},`,
    `${m.cpus}, ${m.platform}, Node ${m.node}, ${serverLabel(m).replace(' ', '-server ')}, client and servers on the same machine,`,
    `load average ${m.loadAverage.start} to ${m.loadAverage.end}, ${Math.round(m.durationSeconds ?? 0)} s. Median ops/s of ${m.options.reps} or more repetitions;`,
    '"x baseline" is the ratio to the workload\'s baseline (ioredis auto-pipelining where it applies):',
    '',
    '| workload | contestant | median ops/s | x baseline |',
    '| --- | --- | ---: | ---: |',
  ];
  for (const w of record.workloads) {
    const base = w.contestants.find((c) => c.id === w.baseline);
    w.contestants.forEach((c, i) => {
      const ops = c.skipped ? `skipped: ${c.skipped}` : c.error ? 'failed' : fmtInt(c.median);
      const shown = c.kind === 'redloop' && !c.skipped && !c.error ? `**${ops}**` : ops;
      const ratio = base && !c.skipped && !c.error ? fmtRatio(c.median / base.median) : '-';
      lines.push(`| ${i === 0 ? w.title : ''} | ${c.label} | ${shown} | ${ratio} |`);
    });
  }
  lines.push('', '| target | measured | needed | result |', '| --- | --- | --- | --- |');
  for (const t of record.targets) {
    const { measured, needed } = describeTarget(t);
    lines.push(`| ${t.description} | ${measured} | ${needed} | ${t.status} |`);
  }
  return `${lines.join('\n')}\n`;
}
