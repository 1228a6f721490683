// The shapes the benchmark suite is built from: a registry of workloads, each with its
// list of contestants. A contestant opens fresh connections (untimed), runs the timed body,
// and closes (untimed), so nothing leaks from one run to the next.

/** One Redis server the bench talks to (a shard). */
export interface Endpoint {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** redis://[user:pass@]host:port/db, as redloop, ioredis and node-redis all accept it. */
  url: string;
}

/** What one timed run gets. */
export interface RunContext {
  /** All shards. Workloads that run "on one connection" use endpoints[0]. */
  endpoints: readonly Endpoint[];
  /** How many operations this run must perform (already scaled for this contestant). */
  count: number;
  /** How many futures are awaited together (windowed workloads). */
  window: number;
  /** Unique per run: written into values so that a run cannot pass on an earlier run's data. */
  nonce: string;
}

/** What a timed body reports. */
export interface Measured {
  /** Operations performed and verified. */
  ops: number;
  /** Self-reported time (external tools); otherwise the runner's wall clock is used. */
  seconds?: number;
  /** Whether the replies were checked by the bench (external tools can't be). */
  verified?: boolean;
  /** For memory-bound rows: how much the process grew at its peak during the run, in MB. */
  memory?: { heapMB: number; rssMB: number };
}

export interface Session {
  /** The timed part: send, await, verify. Throws VerificationError on a wrong reply. */
  run(): Promise<Measured>;
  /** Untimed: close every connection the session opened. */
  close(): Promise<void>;
}

export type ContestantKind =
  | 'redloop' // the library under test
  | 'naive' // redloop awaiting each command in turn
  | 'peer' // other client libraries
  | 'floor'; // what the machine can do: raw socket, redis-benchmark

export interface Contestant {
  id: string;
  label: string;
  kind: ContestantKind;
  /** Shown in the table, e.g. that the naive loop ran a smaller count. */
  note?: string;
  /** The count this contestant runs for a workload count (the naive baseline runs fewer). */
  countFor?(count: number): number;
  /** A reason when the contestant can't run here (e.g. redis-benchmark not on PATH). */
  unavailable?(): Promise<string | undefined>;
  /** Runs outside this process (redis-benchmark, redis-cli): no JIT, so no warm-up run. */
  external?: boolean;
  /** Untimed: connect and get ready. */
  open(ctx: RunContext): Promise<Session>;
}

/** "subject is at least `min` times the best of `versus`", checked on median ops/s. */
export interface Target {
  description: string;
  subject: string;
  /** A ratio target: the subject's median over the best of these contestants' is at least `min`. */
  versus: string[];
  min: number;
  /**
   * An absolute target on the subject alone (`versus` empty) instead of a ratio: its median ops/s
   * at least `min`, or its median peak memory growth (heap+buffers, MB) at most `min`.
   */
  measure?: 'opsPerSec' | 'growthMB';
}

export interface Workload {
  id: string;
  title: string;
  description: string;
  /** Operations per run in a full run; --quick divides it by 10, --scale multiplies it. */
  count: number;
  window: number;
  /** What `count` counts, when it is not ops (e.g. 'keys, a SET and a GET each'). */
  countLabel?: string;
  /** What is counted as one op (shown in the table header). */
  unit: string;
  /** Extra repetitions for short workloads, so their median is not noise. */
  repsFactor?: number;
  /** Untimed: put the data the workload reads on every endpoint. */
  fill?(endpoints: readonly Endpoint[]): Promise<void>;
  /**
   * Untimed: servers of its own this workload runs on instead of the shared ones (a Redis
   * Cluster, say), started before its first run and stopped after its last.
   */
  servers?(): Promise<{ endpoints: Endpoint[]; stop(): Promise<void> }>;
  /** Untimed: remove what the workload wrote (only on servers given by URL). */
  cleanup?(endpoints: readonly Endpoint[], count: number): Promise<void>;
  contestants: Contestant[];
  /** Contestant ids the ratio columns divide by. */
  baseline: string;
  floor: string;
  targets: Target[];
}
