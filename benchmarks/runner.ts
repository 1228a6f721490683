// Runs the workloads: fill, one untimed warm-up per contestant, then repetitions with the
// contestants interleaved (the order rotates every repetition), each run on fresh
// connections with a garbage collection before it.
import v8 from 'node:v8';
import vm from 'node:vm';
import { max, median, min } from './stats.js';
import type { Progress } from './progress.js';
import type { Contestant, ContestantKind, Endpoint, RunContext, Workload } from './types.js';

export interface RunRecord {
  rep: number;
  ops: number;
  seconds: number;
  opsPerSec: number;
  verified: boolean;
  memory?: { heapMB: number; rssMB: number };
}

export interface ContestantResult {
  id: string;
  label: string;
  kind: ContestantKind;
  note?: string;
  /** The count each run was asked for. */
  count: number;
  runs: RunRecord[];
  median: number;
  min: number;
  max: number;
  /** Why the contestant stopped (a wrong reply, an exception, a timeout). */
  error?: string;
  /** Why it did not run at all. */
  skipped?: string;
}

export interface WorkloadResult {
  id: string;
  title: string;
  description: string;
  unit: string;
  count: number;
  countLabel: string;
  window: number;
  reps: number;
  baseline: string;
  floor: string;
  contestants: ContestantResult[];
}

export interface RunnerOptions {
  quick: boolean;
  reps: number;
  scale: number;
  warmup: boolean;
  runTimeoutMs: number;
  contestants?: string[];
}

function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return () => {};
  }
}

const gc = exposeGc();
let nonceCounter = 0;

export class RunTimeoutError extends Error {
  override name = 'RunTimeoutError';
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RunTimeoutError(`${what} took longer than ${ms / 1000} s (--run-timeout)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function workloadCount(w: Workload, opts: Pick<RunnerOptions, 'quick' | 'scale'>): number {
  return Math.max(1, Math.round(w.count * (opts.quick ? 0.1 : 1) * opts.scale));
}

export function workloadReps(w: Workload, opts: Pick<RunnerOptions, 'reps'>): number {
  return opts.reps * (w.repsFactor ?? 1);
}

export function selectedContestants(w: Workload, ids: readonly string[] | undefined): Contestant[] {
  return ids && ids.length > 0 ? w.contestants.filter((c) => ids.includes(c.id)) : [...w.contestants];
}

/** How many runs (warm-ups included) the progress line will count. */
export function plannedRuns(workloads: readonly Workload[], opts: RunnerOptions): number {
  return workloads.reduce((sum, w) => sum + selectedContestants(w, opts.contestants)
    .reduce((n, c) => n + workloadReps(w, opts) + (opts.warmup && !c.external ? 1 : 0), 0), 0);
}

/** One run: open (untimed), run (timed), close (untimed). */
async function runOnce(c: Contestant, ctx: RunContext, timeoutMs: number): Promise<{ ops: number; seconds: number; verified: boolean; memory?: { heapMB: number; rssMB: number } }> {
  gc();
  const what = `${c.id} (${ctx.count.toLocaleString('en-US')} ops)`;
  const session = await withTimeout(c.open(ctx), timeoutMs, `${what}: connecting`);
  let measured;
  let seconds: number;
  try {
    const t0 = process.hrtime.bigint();
    measured = await withTimeout(session.run(), timeoutMs, what);
    seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await withTimeout(session.close(), 10_000, `${what}: closing`).catch((err: unknown) => {
      process.stderr.write(`warning: ${String((err as Error).message ?? err)}\n`);
    });
  }
  return { ops: measured.ops, seconds: measured.seconds ?? seconds, verified: measured.verified ?? true, ...(measured.memory ? { memory: measured.memory } : {}) };
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export async function runWorkload(w: Workload, endpoints: readonly Endpoint[], opts: RunnerOptions, progress: Progress): Promise<WorkloadResult> {
  if (!w.servers) return runOn(w, endpoints, opts, progress);
  // A workload with servers of its own (a Redis Cluster) runs there, whatever was given.
  progress.step(`${w.id}: starting its servers`);
  const own = await w.servers();
  try {
    return await runOn(w, own.endpoints, opts, progress);
  } finally {
    await own.stop();
  }
}

async function runOn(w: Workload, endpoints: readonly Endpoint[], opts: RunnerOptions, progress: Progress): Promise<WorkloadResult> {
  const count = workloadCount(w, opts);
  const reps = workloadReps(w, opts);
  const contestants = selectedContestants(w, opts.contestants);
  const results = new Map<Contestant, ContestantResult>();
  for (const c of contestants) {
    results.set(c, {
      id: c.id, label: c.label, kind: c.kind, note: c.note, count: c.countFor ? c.countFor(count) : count,
      runs: [], median: NaN, min: NaN, max: NaN,
    });
  }
  const context = (c: Contestant, n: number): RunContext => ({
    endpoints, count: n, window: w.window, nonce: `r${(nonceCounter++).toString(36)}`,
  });

  for (const c of contestants) {
    const reason = c.unavailable ? await c.unavailable() : undefined;
    if (reason) results.get(c)!.skipped = reason;
  }
  const live = (c: Contestant) => { const r = results.get(c)!; return !r.skipped && !r.error; };
  const skip = (c: Contestant) => { if (!live(c)) progress.done(); return !live(c); };

  progress.step(`${w.id}: filling`);
  if (w.fill) await w.fill(endpoints);

  if (opts.warmup) {
    const warmCount = Math.max(Math.min(count, w.window || 1), Math.round(count / 20));
    for (const c of contestants) {
      if (c.external) continue;
      if (skip(c)) continue;
      progress.step(`${w.id} · ${c.id} · warm-up`);
      const n = c.countFor ? c.countFor(warmCount) : warmCount;
      try {
        await runOnce(c, context(c, n), opts.runTimeoutMs);
      } catch (err) {
        results.get(c)!.error = `warm-up: ${describe(err)}`;
      }
      progress.done();
    }
  }

  for (let rep = 0; rep < reps; rep++) {
    const order = contestants.map((_, i) => contestants[(i + rep) % contestants.length]!);
    for (const c of order) {
      if (skip(c)) continue;
      const result = results.get(c)!;
      progress.step(`${w.id} · ${c.id} · rep ${rep + 1}/${reps}`);
      try {
        const r = await runOnce(c, context(c, result.count), opts.runTimeoutMs);
        result.runs.push({ rep, ops: r.ops, seconds: r.seconds, opsPerSec: r.ops / r.seconds, verified: r.verified, ...(r.memory ? { memory: r.memory } : {}) });
      } catch (err) {
        result.error = describe(err);
      }
      progress.done();
    }
  }

  for (const r of results.values()) {
    if (r.count !== count) {
      const why = r.count < count ? 'to keep it short' : 'for its ms clock';
      r.note = [`count ${r.count.toLocaleString('en-US')}, not ${count.toLocaleString('en-US')}, ${why}`, r.note].filter(Boolean).join('; ');
    }
    const rates = r.runs.map((x) => x.opsPerSec);
    r.median = median(rates);
    r.min = min(rates);
    r.max = max(rates);
  }
  return {
    id: w.id, title: w.title, description: w.description, unit: w.unit, count, countLabel: w.countLabel ?? 'ops', window: w.window, reps,
    baseline: w.baseline, floor: w.floor, contestants: [...results.values()],
  };
}
