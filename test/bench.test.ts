// The benchmark suite's own checks: its parsing, its verification (no contestant can pass
// by skipping work) and one tiny end-to-end pass of every workload and contestant. Nothing
// here asserts on speed.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { DEFAULT_OUT_DIR, parseBenchArgs, RESULTS_DIR } from '../benchmarks/options.js';
import { parseRedisBenchmarkCsv, splitEvenly } from '../benchmarks/redis-benchmark.js';
import { evaluateTargets, formatReport } from '../benchmarks/report.js';
import { runWorkload, type RunnerOptions, type WorkloadResult } from '../benchmarks/runner.js';
import { endpointFromServer, endpointFromUrl, raw } from '../benchmarks/servers.js';
import { renderSvg } from '../benchmarks/svg.js';
import type { Endpoint, Workload } from '../benchmarks/types.js';
import { checkSunion, expectEvery, setgetKey, setgetValue, VerificationError } from '../benchmarks/verify.js';
import { WORKLOADS, findWorkloads } from '../benchmarks/workloads/index.js';
import { setget } from '../benchmarks/workloads/setget.js';
import { startShards, type RedisServer } from '../harness/redis.js';
import { serverBinaries, serverVersion } from '../harness/servers.js';
import type { BenchMeta } from '../benchmarks/results.js';

const silent = { start() {}, step() {}, done() {}, stop() {} };

describe('benchmarks: parsing and verification', () => {
  it('parses redis-benchmark --csv output and refuses an "inf" rate', () => {
    const csv = '"test","rps","avg_latency_ms"\n"SET","512820.53","0.5"\n"GET","649350.62","0.4"\n';
    expect(parseRedisBenchmarkCsv(csv)).to.deep.equal([{ test: 'SET', rps: 512820.53 }, { test: 'GET', rps: 649350.62 }]);
    expect(() => parseRedisBenchmarkCsv('"test","rps"\n"PING","inf"\n')).to.throw(/too short/);
  });

  it('parses bench options, REDIS_URLS and --quick defaults', () => {
    const o = parseBenchArgs(['--quick', '--only', 'ping,sunion', '--shards', '3'], { REDIS_URLS: 'redis://127.0.0.1:1/0 redis://127.0.0.1:2/0' });
    expect(o.quick).to.equal(true);
    expect(o.reps).to.equal(2);
    expect(o.shards).to.equal(3);
    expect(o.only).to.deep.equal(['ping', 'sunion']);
    expect(o.urls).to.have.length(2);
    expect(parseBenchArgs([], {}).reps).to.equal(3);
    expect(() => parseBenchArgs(['--shards', '0'], {})).to.throw(/positive integer/);
    expect(() => findWorkloads(['nope'])).to.throw(/unknown workload "nope"/);
  });

  it('reads host, port, db and credentials from a URL, and refuses rediss://', () => {
    const e = endpointFromUrl('redis://user:p%40ss@127.0.0.1:7000/4');
    expect(e).to.include({ host: '127.0.0.1', port: 7000, db: 4, username: 'user', password: 'p@ss' });
    expect(endpointFromUrl(e.url)).to.deep.equal(e);
    expect(() => endpointFromUrl('rediss://127.0.0.1:7000')).to.throw(/plain TCP/);
  });

  it('parses --check and --publish: --publish is for full runs only and implies --check', () => {
    expect(parseBenchArgs([], {})).to.include({ check: false, publish: false, outDir: DEFAULT_OUT_DIR });
    expect(parseBenchArgs(['--check'], {})).to.include({ check: true, publish: false });
    expect(parseBenchArgs(['--publish'], {})).to.include({ check: true, publish: true });
    expect(() => parseBenchArgs(['--publish', '--quick'], {})).to.throw(/--publish needs a full run .*without --quick/);
    expect(() => parseBenchArgs(['--publish', '--only', 'ping', '--scale', '0.5'], {})).to.throw(/without --only, --scale/);
  });

  it('writes runs where git ignores them; the chart the README shows is the tracked published copy', async () => {
    const git = promisify(execFile);
    const repo = { cwd: RESULTS_DIR };
    await git('git', ['check-ignore', '--quiet', path.join(DEFAULT_OUT_DIR, 'latest.json')], repo); // throws if not ignored
    const { stdout } = await git('git', ['ls-files', 'published.json', 'published.svg'], repo);
    expect(stdout.split('\n').filter(Boolean)).to.deep.equal(['published.json', 'published.svg']);
    const readme = fs.readFileSync(path.join(RESULTS_DIR, '../../README.md'), 'utf8');
    expect(readme).to.include('](benchmarks/results/published.svg)');
  });

  it('splits counts over shards exactly', () => {
    expect(splitEvenly(10, 3)).to.deep.equal([4, 3, 3]);
    expect(splitEvenly(1, 2)).to.deep.equal([1, 0]);
  });

  it('rejects wrong replies', () => {
    expect(() => expectEvery(['PONG', 'PONG', null], 'PONG', 'PING')).to.throw(VerificationError, /reply #2/);
    const good = Array.from({ length: 1500 }, (_, i) => String(i));
    expect(() => checkSunion(good, 0)).not.to.throw();
    expect(() => checkSunion(good.slice(1), 1)).to.throw(VerificationError);
    const dup = [...good.slice(0, 1499), '0'];
    expect(() => checkSunion(dup, 0)).to.throw(VerificationError);
  });
});

describe('benchmarks: every workload and contestant, tiny counts', function () {
  this.timeout(120_000);
  let servers: RedisServer[] = [];
  let endpoints: Endpoint[] = [];
  const results: WorkloadResult[] = [];
  const opts: RunnerOptions = { quick: true, scale: 0.01, reps: 1, warmup: false, runTimeoutMs: 60_000 };

  before(async () => {
    servers = await startShards(2);
    endpoints = servers.map(endpointFromServer);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  for (const w of WORKLOADS) {
    it(`${w.id}: every contestant runs and verifies its replies`, async () => {
      const result = await runWorkload(w, endpoints, opts, silent);
      results.push(result);
      for (const c of result.contestants) {
        if (c.skipped) continue; // redis-benchmark not on PATH
        expect(c.error, `${c.id}: ${c.error}`).to.equal(undefined);
        expect(c.runs, c.id).to.have.length(result.reps);
        expect(c.runs[0]!.ops, c.id).to.be.greaterThan(0);
        expect(c.median, c.id).to.be.greaterThan(0);
      }
    });
  }

  it('reports a table, targets and an SVG from those results', () => {
    const targets = evaluateTargets(WORKLOADS, results);
    expect(targets.map((t) => t.workload)).to.include.members(['ping', 'ping-window', 'sunion', 'setget']);
    for (const t of targets) {
      // A target is judged when every contestant it compares ran; one skipped because a tool is
      // missing here (redis-benchmark, redis-cli) leaves it 'n/a', and the table says why.
      const result = results.find((r) => r.id === t.workload)!;
      const skipped = result.contestants.filter((c) => c.skipped && [t.subject, ...t.versus].includes(c.id));
      if (skipped.length === 0) expect(t.status, t.description).to.be.oneOf(['pass', 'fail']);
      else expect(t.status, `${t.description}: ${skipped.map((c) => `${c.id} skipped (${c.skipped})`).join(', ')}`).to.equal('n/a');
    }
    const text = formatReport(results, targets, 'header');
    for (const w of WORKLOADS) for (const c of w.contestants) expect(text).to.include(c.label);
    const svg = renderSvg(results, 'subtitle');
    expect(svg).to.match(/^<svg[^]*<\/svg>\n$/);
    expect(svg).not.to.include('NaN');
  });

  it('logs one line per finished workload when stdout is not a terminal, and --check exits 1 on a target it cannot judge', async () => {
    const out = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-bench-out-'));
    try {
      const main = fileURLToPath(new URL('../benchmarks/main.js', import.meta.url));
      const args = ['--only', 'ping,ping-window', '--contestants', 'redloop', '--scale', '0.001', '--reps', '1', '--no-warmup', '--check', '--out', out];
      const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      const lines = stdout.split('\n');
      expect(lines[0], stdout).to.match(/^\[1\/2\] ping, \d+ s: redloop [\d,]+\/s$/);
      expect(lines[1], stdout).to.match(/^\[2\/2\] ping-window, \d+ s: redloop [\d,]+\/s$/);
      // Only redloop ran, so no target can be judged: --check says so and fails the run.
      expect(stderr).to.match(/bench --check: \d+ target\(s\) missed:\n {2}.*not judged: a contestant it compares did not run/);
      expect(code, stderr).to.equal(1);
      // A run on Valkey is named partial-valkey.*, next to Redis's; its meta says which server ran.
      const { family } = serverBinaries();
      const name = family === 'redis' ? 'partial' : `partial-${family}`;
      expect((await fs.promises.readdir(out)).filter((f) => f.startsWith(`${name}.`)).sort()).to.deep.equal([`${name}.json`, `${name}.svg`]);
      const meta = (JSON.parse(await fs.promises.readFile(path.join(out, `${name}.json`), 'utf8')) as { meta: BenchMeta }).meta;
      expect(meta.server).to.deep.equal({ family, version: (await serverVersion()).version });
      expect(meta.servers).to.equal(`2 throwaway ${family}-server shard(s)`);
    } finally {
      await fs.promises.rm(out, { recursive: true, force: true });
    }
  });

  it('fails a contestant that skips work: GETs without this run\'s SETs see another nonce', async () => {
    // A cheat that only GETs: the keys hold an earlier run's values, and the nonce differs.
    await raw(endpoints[0]!, Array.from({ length: 100 }, (_, i) => ['SET', setgetKey(i), setgetValue('old', i)]));
    const cheat: Workload = {
      ...setget,
      id: 'setget-cheat',
      contestants: [{
        id: 'cheat', label: 'GET only', kind: 'peer',
        open: async (ctx) => ({
          close: async () => {},
          run: async () => {
            const values = await raw(ctx.endpoints[0]!, Array.from({ length: ctx.count }, (_, i) => ['GET', setgetKey(i)]));
            values.forEach((v, i) => { if (v !== setgetValue(ctx.nonce, i)) throw new VerificationError(`GET #${i}: ${String(v)}`); });
            return { ops: ctx.count * 2 };
          },
        }),
      }],
      targets: [],
    };
    const result = await runWorkload(cheat, endpoints, { ...opts, scale: 100 / setget.count / 0.1 }, silent);
    expect(result.contestants[0]!.error).to.match(/VerificationError: GET #0: old:0/);
  });
});
