// Command-line arguments of `npm run bench`.
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** benchmarks/results in the source tree (this file runs from dist/benchmarks/). */
export const RESULTS_DIR = fileURLToPath(new URL('../../benchmarks/results/', import.meta.url));
/** Where runs write by default: ignored by git, so that running the bench leaves the tree clean. */
export const DEFAULT_OUT_DIR = path.join(RESULTS_DIR, 'runs');

export interface BenchOptions {
  shards: number;
  urls: string[];
  quick: boolean;
  only?: string[];
  contestants?: string[];
  reps: number;
  scale: number;
  warmup: boolean;
  outDir: string;
  runTimeoutMs: number;
  json: boolean;
  /** Also write the committed copy the README shows (benchmarks/results/published.*); implies check. */
  publish: boolean;
  /** Exit 1 when a target is missed or cannot be judged. */
  check: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [options]     (or: node dist/benchmarks/main.js [options])

Runs every workload against every contestant, interleaved, several repetitions, and prints
the median ops/s with ratios to ioredis and to the raw floor, then the targets. Writes JSON and
SVG results to benchmarks/results/runs/ (ignored by git). A full run takes about 7 minutes on
2 cores; when stdout is not a terminal, one line is printed per finished workload.

  --shards N        start N throwaway redis-server processes (default 2; valkey-server with
                    REDLOOP_SERVER=valkey, see docs/servers.md)
  --url URL         use this server instead (repeat for more shards; or REDIS_URLS="url url")
                    the bench writes set1, set2, k:* and key:* there and deletes them after
  --quick           1/10 of the counts and fewer repetitions (under a minute)
  --only W[,W]      run only these workloads: ping, ping-window, sunion, setget, massinsert,
                    massinsert-cluster, massinsert-shards, cluster, multi, cluster-batch, pubsub,
                    scan (the cluster ones start their own 3 masters)
  --contestants C   run only these contestants (comma separated ids, e.g. redloop,ioredis-auto)
  --reps N          repetitions per contestant (default 3, --quick 2; short workloads do more)
  --scale F         multiply every count by F (e.g. 0.5)
  --no-warmup       skip the untimed warm-up run of each contestant
  --out DIR         where to write results (default benchmarks/results/runs, ignored by git)
  --check           exit 1 when a target is missed or could not be judged (a contestant it
                    compares did not run)
  --publish         a full run only: also write benchmarks/results/published.json and .svg,
                    the committed copy the README shows (date, commit and machine in it;
                    published-valkey.* for a run on Valkey); implies --check
  --run-timeout S   give up on a run after S seconds (default 120)
  --json            print the JSON result on stdout instead of the table
  -h, --help        this text
`;

export function parseBenchArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      shards: { type: 'string' },
      url: { type: 'string', multiple: true },
      quick: { type: 'boolean' },
      only: { type: 'string', multiple: true },
      contestants: { type: 'string', multiple: true },
      reps: { type: 'string' },
      scale: { type: 'string' },
      'no-warmup': { type: 'boolean' },
      out: { type: 'string' },
      'run-timeout': { type: 'string' },
      json: { type: 'boolean' },
      check: { type: 'boolean' },
      publish: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const quick = values.quick ?? false;
  const positive = (name: string, raw: string | undefined, fallback: number, integer = true): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`--${name} needs a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
    return n;
  };
  const list = (raw: string[] | undefined) => raw?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const urls = values.url ?? (env.REDIS_URLS ? env.REDIS_URLS.split(/[\s,]+/).filter(Boolean) : []);
  const publish = values.publish ?? false;
  if (publish) {
    const partial = ['quick', 'only', 'contestants', 'scale', 'reps', 'no-warmup'].filter((k) => values[k as keyof typeof values] !== undefined);
    if (partial.length > 0) throw new Error(`--publish needs a full run with the default settings, without ${partial.map((k) => `--${k}`).join(', ')}`);
  }
  return {
    shards: positive('shards', values.shards, 2),
    urls,
    quick,
    only: list(values.only),
    contestants: list(values.contestants),
    reps: positive('reps', values.reps, quick ? 2 : 3),
    scale: positive('scale', values.scale, 1, false),
    warmup: !(values['no-warmup'] ?? false),
    outDir: values.out !== undefined ? path.resolve(values.out) : DEFAULT_OUT_DIR,
    runTimeoutMs: positive('run-timeout', values['run-timeout'], 120) * 1000,
    json: values.json ?? false,
    publish,
    check: publish || (values.check ?? false),
    help: values.help ?? false,
  };
}
