// The table on stdout: median ops/s, min-max, ratio to ioredis and to the raw floor, and
// the product targets checked on the same run's medians.
import type { ContestantResult, WorkloadResult } from './runner.js';
import { median } from './stats.js';
import type { Target, Workload } from './types.js';

export interface TargetResult extends Target {
  workload: string;
  /** The ratio (or, for an absolute target, the ops/s or MB) this run measured. */
  measured: number;
  /** Which contestant the subject was compared with (the best of `versus`). */
  against?: string;
  status: 'pass' | 'fail' | 'n/a';
}

/** A rate with thousands separators ('-' when not measured; a JSON record holds null for NaN). */
export const fmtInt = (n: number | null) => (n !== null && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
export const fmtRatio = (n: number) => (Number.isFinite(n) ? `${n >= 10 ? n.toFixed(1) : n.toFixed(2)}x` : '-');

function usable(r: ContestantResult | undefined): r is ContestantResult {
  return r !== undefined && !r.error && !r.skipped && Number.isFinite(r.median);
}

export function ratioTo(w: WorkloadResult, subject: ContestantResult, id: string): number {
  const other = w.contestants.find((c) => c.id === id);
  return usable(other) && usable(subject) ? subject.median / other.median : NaN;
}

export function evaluateTargets(workloads: readonly Workload[], results: readonly WorkloadResult[]): TargetResult[] {
  const out: TargetResult[] = [];
  for (const result of results) {
    const w = workloads.find((x) => x.id === result.id);
    for (const t of w?.targets ?? []) {
      const subject = result.contestants.find((c) => c.id === t.subject);
      if (t.measure !== undefined) {
        out.push({ ...t, workload: result.id, ...absolute(t, subject) });
        continue;
      }
      const versus = result.contestants.filter((c) => t.versus.includes(c.id) && usable(c));
      const best = versus.sort((a, b) => b.median - a.median)[0];
      // A target is judged only when the subject and every contestant it names ran.
      const complete = usable(subject) && versus.length === t.versus.length;
      const ratio = usable(subject) && best ? subject.median / best.median : NaN;
      out.push({ ...t, workload: result.id, measured: ratio, against: best?.id, status: !complete ? 'n/a' : ratio >= t.min ? 'pass' : 'fail' });
    }
  }
  return out;
}

function absolute(t: Target, subject: ContestantResult | undefined): Pick<TargetResult, 'measured' | 'status'> {
  if (!usable(subject)) return { measured: NaN, status: 'n/a' };
  if (t.measure === 'opsPerSec') return { measured: subject.median, status: subject.median >= t.min ? 'pass' : 'fail' };
  const mem = subject.runs.filter((r) => r.memory !== undefined).map((r) => r.memory!.heapMB);
  if (mem.length === 0) return { measured: NaN, status: 'n/a' };
  const grew = median(mem);
  return { measured: grew, status: grew <= t.min ? 'pass' : 'fail' };
}

/** The measured figure and what was needed, as the targets table and --check print them. */
export function describeTarget(t: TargetResult): { measured: string; needed: string } {
  if (t.measure === 'opsPerSec') return { measured: `${fmtInt(t.measured)}/s`, needed: `>= ${fmtInt(t.min)}/s` };
  if (t.measure === 'growthMB') return { measured: Number.isFinite(t.measured) ? `+${Math.round(t.measured)} MB` : '-', needed: `<= ${t.min} MB` };
  // Three decimals, so that a 1.497x shown next to ">= 1.50x FAIL" does not look like a tie.
  const ratio = Number.isFinite(t.measured) ? `${t.measured.toFixed(3)}x` : '-';
  return { measured: `${ratio}${t.against ? ` vs ${t.against}` : ''}`, needed: `>= ${fmtRatio(t.min)}` };
}

/** One line, at most 100 characters (the full text is in the JSON and on stderr). */
function shorten(text: string): string {
  const line = text.split('\n')[0]!;
  return line.length > 100 ? `${line.slice(0, 97)}...` : line;
}

function table(rows: string[][], alignRight: boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((cell, i) => (alignRight[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function formatWorkload(w: WorkloadResult): string {
  const header = ['contestant', 'ops/run', `median ${w.unit}/s`, 'min - max', `x ${w.baseline}`, `x ${w.floor}`, 'note'];
  const rows = [header];
  for (const c of w.contestants) {
    if (c.skipped) {
      rows.push([c.label, '', '', '', '', '', `skipped: ${c.skipped}`]);
      continue;
    }
    const mem = c.runs.filter((r) => r.memory !== undefined);
    const memory = mem.length === 0 ? ''
      : `peak growth (median) +${Math.round(median(mem.map((r) => r.memory!.heapMB)))} MB heap+buffers, +${Math.round(median(mem.map((r) => r.memory!.rssMB)))} MB RSS`;
    const note = [c.error ? `FAILED: ${shorten(c.error)}` : '', memory, c.note ?? ''].filter(Boolean).join('; ');
    rows.push([
      c.label,
      fmtInt(c.runs[0]?.ops ?? c.count),
      fmtInt(c.median),
      c.runs.length ? `${fmtInt(c.min)} - ${fmtInt(c.max)}` : '-',
      fmtRatio(ratioTo(w, c, w.baseline)),
      fmtRatio(ratioTo(w, c, w.floor)),
      note,
    ]);
  }
  const title = `${w.title} (${w.id}): ${fmtInt(w.count)} ${w.countLabel} per run, ${w.reps} reps, median of each`;
  return `${title}\n  ${w.description}\n\n${table(rows, [false, true, true, true, true, true, false])}\n`;
}

export function formatTargets(targets: readonly TargetResult[]): string {
  if (targets.length === 0) return '';
  const rows = [['target', 'measured', 'needed', 'result']];
  for (const t of targets) {
    const { measured, needed } = describeTarget(t);
    rows.push([t.description, measured, needed, t.status.toUpperCase()]);
  }
  return `Targets (medians in this run)\n\n${table(rows, [false, true, true, false])}\n`;
}

export function formatReport(results: readonly WorkloadResult[], targets: readonly TargetResult[], header: string): string {
  return [header, ...results.map(formatWorkload), formatTargets(targets)].join('\n');
}
