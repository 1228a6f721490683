// loop.massInsert and `redloop pipe` into a real 3-master Redis Cluster and into a shard set of
// 3 standalone servers: every key on the node that owns its slot, errors by source index, memory
// flat for a 5M-command async source, a slot migrated during the load with nothing lost, RESP and
// text input through the CLI, replies: 'off' per node.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  EventLoop, keySlot, type Cluster, type MassInsertCommand, type ShardSet,
} from '../lib/index.js';
import { startCluster, type RedisCluster } from '../harness/cluster.js';
import { startShards, type RedisServer } from '../harness/redis.js';
import { encodeCommand as rawEncode } from '../harness/resp.js';

const CLI = fileURLToPath(new URL('../bin/redloop.js', import.meta.url));

function* sets(n: number, prefix = 'key'): Generator<MassInsertCommand> {
  for (let i = 0; i < n; i++) yield ['SET', `${prefix}:${i}`, `value:${i}`];
}

function runCli(args: string[], file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const fd = fs.openSync(file, 'r');
    const child = spawn(process.execPath, [CLI, ...args], { stdio: [fd, 'pipe', 'pipe'], env: { ...process.env, REDIS_URL: '' } });
    fs.closeSync(fd);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A load where some commands fail, at known indices: keyless, cross-slot, wrong type, bad arguments. */
function withFailures(n: number): { commands: unknown[]; failures: Array<{ index: number; name: string; match: RegExp }> } {
  const commands: unknown[] = [];
  for (let i = 0; i < n; i++) commands.push(['SET', `e:${i}`, 'v']);
  const failures = [
    { index: 10, cmd: ['PING'], name: 'RoutingError', match: /PING: a command without keys/ },
    { index: 500, cmd: ['LPUSH', 'e:3', 'x'], name: 'ReplyError', match: /^WRONGTYPE/ },
    { index: 2_000, cmd: ['RENAME', 'e:1', 'e:2'], name: 'RoutingError', match: /RENAME: its keys hash to different slots/ },
    { index: 3_001, cmd: [], name: 'TypeError', match: /command 3001: a command must not be an empty array/ },
    { index: 4_000, cmd: ['LPUSH', 'e:7', 'x'], name: 'ReplyError', match: /^WRONGTYPE/ },
    { index: 7_777, cmd: ['FLUSHALL'], name: 'RoutingError', match: /FLUSHALL: a command without keys/ },
    { index: 9_000, cmd: ['LPUSH', 'e:8000', 'x'], name: 'ReplyError', match: /^WRONGTYPE/ },
  ];
  for (const f of failures) commands.splice(f.index, 0, f.cmd);
  return { commands, failures };
}

function expectFailures(report: { errors: { count: number; first: Array<{ index: number; name: string; message: string }> } }, failures: ReturnType<typeof withFailures>['failures']): void {
  expect(report.errors.count).to.equal(failures.length);
  expect(report.errors.first.map((f) => f.index)).to.deep.equal(failures.map((f) => f.index));
  report.errors.first.forEach((f, i) => {
    expect(f.name, `failure at ${f.index}`).to.equal(failures[i]!.name);
    expect(f.message, `failure at ${f.index}`).to.match(failures[i]!.match);
  });
}

describe('loop.massInsert into a Redis Cluster (3 masters)', function () {
  this.timeout(240_000);
  let harness: RedisCluster;
  let loop: EventLoop;
  let cluster: Cluster;
  let dir: string;

  async function dbsizes(): Promise<number[]> {
    return Promise.all(harness.masters().map(async (m) => Number(await m.command('DBSIZE'))));
  }

  before(async () => {
    harness = await startCluster({ masters: 3 });
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-cluster-pipe-'));
  });
  after(async () => {
    await harness?.stop();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await harness.waitForConvergence();
    await Promise.all(harness.masters().map((m) => m.command('FLUSHALL')));
    loop = new EventLoop();
    cluster = loop.cluster([harness.seedUrl]);
  });
  afterEach(async () => {
    await loop.close();
  });

  it('loads 1,000,000 SETs: DBSIZE per master sums to the count, and each key is on the master CLUSTER KEYSLOT names', async () => {
    const n = 1_000_000;
    const report = await loop.massInsert(cluster, sets(n));
    expect(report.sent).to.equal(n);
    expect(report.replies).to.equal(n);
    expect(report.errors.count).to.equal(0);
    expect(report.redirections).to.deep.equal({ moved: 0, ask: 0, tryAgain: 0 });
    const sizes = await dbsizes();
    expect(sizes.reduce((a, b) => a + b, 0)).to.equal(n);
    for (const s of sizes) expect(s, 'every master got its share').to.be.above(n / 4);
    for (const i of [0, 1, 17, 4_242, 99_999, 123_456, 500_000, 777_777, 999_999]) {
      const key = `key:${i}`;
      const owner = await harness.masterOfKey(key); // asks the server (CLUSTER KEYSLOT), not lib/
      expect(await owner.command('CLUSTER', 'KEYSLOT', key)).to.equal(keySlot(key));
      expect(await owner.command('GET', key)).to.equal(`value:${i}`);
      for (const other of harness.masters().filter((m) => m !== owner)) {
        expect(await other.command('CLUSTER', 'COUNTKEYSINSLOT', keySlot(key)), `${key} only on its owner`).to.equal(0);
      }
    }
  });

  it('reports failures by source index (keyless, cross-slot, wrong type, bad arguments) and applies the rest', async () => {
    const { commands, failures } = withFailures(10_000);
    // Each LPUSH goes after the SET of its key (same node, same connection): WRONGTYPE.
    const report = await loop.massInsert(cluster, commands as MassInsertCommand[]);
    expectFailures(report, failures);
    expect(report.sent).to.equal(10_000 + 3); // the three WRONGTYPE commands were sent
    expect(report.replies).to.equal(10_003);
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(10_000);
  });

  it('keeps RSS flat for an async generator of 5,000,000 commands into the cluster (and applies each once)', async () => {
    const n = 5_000_000;
    async function* incrs(): AsyncGenerator<MassInsertCommand> {
      for (let i = 0; i < n; i++) yield ['INCR', `counter:${i % 3}`];
    }
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
    let report;
    try {
      report = await loop.massInsert(cluster, incrs(), { onProgress: () => { peak = Math.max(peak, process.memoryUsage().rss); }, progressInterval: 0 });
    } finally {
      clearInterval(sampler);
    }
    const growthMb = (Math.max(peak, process.memoryUsage().rss) - before) / 2 ** 20;
    expect(report.replies).to.equal(n);
    expect(report.errors.count).to.equal(0);
    let total = 0;
    for (let k = 0; k < 3; k++) {
      const owner = await harness.masterOfKey(`counter:${k}`);
      total += Number(await owner.command('GET', `counter:${k}`));
    }
    expect(total).to.equal(n);
    expect(new Set(await Promise.all([0, 1, 2].map((k) => harness.masterOfKey(`counter:${k}`)))).size, 'the counters live on several masters').to.be.above(1);
    expect(growthMb, `RSS grew by ${growthMb.toFixed(1)} MB`).to.be.below(200);
  });

  it('loses nothing when a slot migrates during the load (ASK then MOVED followed and counted)', async () => {
    const n = 200_000;
    const slot = keySlot('{mig}');
    const source = await harness.nodeForSlot(slot);
    const target = harness.masters().find((m) => m !== source)!;
    let migration: Awaited<ReturnType<RedisCluster['beginMigration']>> | undefined;
    // Every other command is in the migrating slot; the source itself drives the migration, so
    // it happens while commands are in flight, whatever the machine's speed.
    async function* load(): AsyncGenerator<MassInsertCommand> {
      for (let i = 0; i < n; i++) {
        if (i === 40_000) migration = await harness.beginMigration(slot, target);
        if (i === 80_000) await migration!.migrateSomeKeys(5_000);
        if (i === 120_000) await migration!.finish();
        yield i % 2 === 0 ? ['SET', `{mig}:${i}`, `v${i}`] : ['SET', `other:${i}`, `v${i}`];
      }
    }
    const report = await loop.massInsert(cluster, load());
    expect(report.errors).to.deep.equal({ count: 0, first: [] });
    expect(report.replies).to.equal(n);
    expect(report.redirections!.ask + report.redirections!.moved, JSON.stringify(report.redirections)).to.be.above(0);
    expect(await harness.nodeForSlot(slot)).to.equal(target);
    let othersInSlot = 0; // other:i keys may hash to the same slot
    for (let i = 1; i < n; i += 2) if (keySlot(`other:${i}`) === slot) othersInSlot++;
    expect(await target.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(n / 2 + othersInSlot);
    expect(await source.command('CLUSTER', 'COUNTKEYSINSLOT', slot)).to.equal(0);
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(n);
    expect(await target.command('GET', '{mig}:199998')).to.equal('v199998');
    // Moved back so the other tests see the cluster as it was made.
    await harness.moveSlot(slot, source);
  });

  it("replies: 'off' loads each master on a connection of its own and reports routing errors by index", async () => {
    const commands: MassInsertCommand[] = [...sets(100_000, 'off')];
    commands.splice(1234, 0, ['PING']);
    const report = await loop.massInsert(cluster, commands, { replies: 'off' });
    expect(report.replyMode).to.equal('off');
    expect(report.sent).to.equal(100_000);
    expect(report.errors.first.map((f) => [f.index, f.name])).to.deep.equal([[1234, 'RoutingError']]);
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(100_000);
    // The cluster's own connections were never put under CLIENT REPLY OFF.
    expect(await loop.sendCommand(cluster, 'GET', 'off:99999')).to.equal('value:99999');
  });

  it('routes RESP byte input by each command\'s key, sending its bytes as they came', async () => {
    const commands: string[][] = [];
    for (let i = 0; i < 30_000; i++) commands.push(['HSET', `h:${i % 300}`, `f${i}`, 'v']);
    commands.splice(20_000, 0, ['INFO']);
    const whole = Buffer.concat(commands.map((c) => rawEncode(c)));
    const chunks: Buffer[] = [];
    for (let pos = 0, size = 7; pos < whole.length; pos += size, size = (size * 31) % 4093 + 1) chunks.push(whole.subarray(pos, pos + size));
    const report = await loop.massInsert(cluster, chunks, { input: 'resp' });
    expect(report.sent).to.equal(30_000);
    expect(report.errors.first.map((f) => [f.index, f.name])).to.deep.equal([[20_000, 'RoutingError']]);
    expect(report.bytesIn).to.equal(whole.length);
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(300);
    expect(await loop.sendCommand(cluster, 'HLEN', 'h:7')).to.equal(100);
  });

  it('redloop pipe --cluster: RESP from stdin, failed commands by number, exit 1', async () => {
    const commands: string[][] = [];
    for (let i = 0; i < 100_000; i++) commands.push(['SET', `cli:${i}`, `value:${i}`]);
    commands.splice(50_000, 0, ['DBSIZE']);
    const file = path.join(dir, 'sets.resp');
    fs.writeFileSync(file, Buffer.concat(commands.map((c) => rawEncode(c))));
    const run = await runCli(['pipe', '--cluster', harness.seedUrl], file);
    expect(run.stdout).to.equal('errors: 1, replies: 100000\n');
    expect(run.stderr).to.match(/^command #50001: DBSIZE: a command without keys/m);
    expect(run.code).to.equal(1);
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(100_000);
  });

  it('redloop pipe --cluster --format text: one command per line, exit 0', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) lines.push(`SET "t:${i}" 'v ${i}'`);
    const file = path.join(dir, 'sets.txt');
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const run = await runCli(['pipe', '--cluster', harness.seedUrl, '--format', 'text'], file);
    expect(run).to.deep.equal({ code: 0, stdout: 'errors: 0, replies: 20000\n', stderr: '' });
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(20_000);
    expect(await loop.sendCommand(cluster, 'GET', 't:19999')).to.equal('v 19999');
  });
});

describe('loop.massInsert into a shard set of 3 standalone servers', function () {
  this.timeout(120_000);
  let servers: RedisServer[];
  let loop: EventLoop;
  let shards: ShardSet;
  let dir: string;

  const dbsizes = () => Promise.all(servers.map(async (s) => Number(await s.command('DBSIZE'))));

  before(async () => {
    servers = await startShards(3);
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-shards-pipe-'));
  });
  after(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await Promise.all(servers.map((s) => s.command('FLUSHALL')));
    loop = new EventLoop();
    shards = loop.shards(servers.map((s) => s.url));
  });
  afterEach(async () => {
    await loop.close();
  });

  it('loads 300,000 SETs: each key on the shard its slot range names, DBSIZE sums to the count', async () => {
    const n = 300_000;
    const report = await loop.massInsert(shards, sets(n));
    expect(report).to.include({ sent: n, replies: n });
    expect(report.errors.count).to.equal(0);
    expect(report.redirections).to.equal(undefined);
    const sizes = await dbsizes();
    expect(sizes.reduce((a, b) => a + b, 0)).to.equal(n);
    for (const i of [0, 5, 999, 150_000, 299_999]) {
      const key = `key:${i}`;
      const slot = keySlot(key);
      const owner = shards.slotRanges.findIndex(([first, last]) => slot >= first && slot <= last);
      for (let s = 0; s < 3; s++) expect(await servers[s]!.command('GET', key), `${key} (slot ${slot})`).to.equal(s === owner ? `value:${i}` : null);
    }
  });

  it('reports failures by source index and applies the rest', async () => {
    const { commands, failures } = withFailures(10_000);
    const report = await loop.massInsert(shards, commands as MassInsertCommand[]);
    expectFailures(report, failures);
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(10_000);
  });

  it("replies: 'off' per shard", async () => {
    const report = await loop.massInsert(shards, sets(50_000, 'off'), { replies: 'off' });
    expect(report).to.include({ sent: 50_000, replyMode: 'off' });
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(50_000);
    expect(await loop.sendCommand(shards, 'GET', 'off:49999')).to.equal('value:49999');
  });

  it('redloop pipe --shards: RESP and text input, same report and exit codes', async () => {
    const urls = servers.map((s) => s.url).join(',');
    const commands: string[][] = [];
    for (let i = 0; i < 30_000; i++) commands.push(['SET', `cli:${i}`, `value:${i}`]);
    commands.splice(10, 0, ['LPUSH', 'cli:1', 'x']);
    const file = path.join(dir, 'sets.resp');
    fs.writeFileSync(file, Buffer.concat(commands.map((c) => rawEncode(c))));
    const resp = await runCli(['pipe', '--shards', urls], file);
    expect(resp.stdout).to.equal('errors: 1, replies: 30001\n');
    expect(resp.stderr).to.match(/^command #11: WRONGTYPE/m);
    expect(resp.code).to.equal(1);

    const text = path.join(dir, 'sets.txt');
    fs.writeFileSync(text, 'SET a 1\nINCR a\nRPUSH l x y\n');
    expect(await runCli(['pipe', '--shards', urls, '--format', 'text'], text)).to.deep.equal({ code: 0, stdout: 'errors: 0, replies: 3\n', stderr: '' });
    expect((await dbsizes()).reduce((a, b) => a + b, 0)).to.equal(30_002);
    expect(await loop.sendCommand(shards, 'GET', 'a')).to.equal('2');

    const usage = await runCli(['pipe', '--shards', urls, '--cluster', urls], text);
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.include('give one of --url, --cluster and --shards');
  });
});
