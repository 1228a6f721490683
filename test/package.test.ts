// The package as a user gets it: `npm pack`, the tarball installed into a new project (offline,
// from the npm cache that `npm ci` filled), then the installed CLI and require()/import from
// that project. Catches a "files" list that leaves out what a command or a source map needs.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startRedis, type RedisServer } from '../harness/redis.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * npm's environment without what `npm test` exported for this package (npm_package_*,
 * npm_config_local_prefix...), which would point a child npm at the repository.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_cafile', 'npm_config_registry']);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())) env[k] = v;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

function run(file: string, args: string[], opts: { cwd: string; input?: string }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

describe('the packed package, installed into a new project', function () {
  this.timeout(120_000);
  let dir: string;
  let app: string;
  let files: string[];
  let server: RedisServer;

  before(async () => {
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-pack-'));
    // dist/ is built (npm test compiles first), so the prepare script is not needed here.
    const { stdout } = await execFileAsync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, env: cleanEnv() });
    const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    files = info.files.map((f) => f.path);
    const tarball = `file:../${info.filename}`;

    // The install is offline: a lockfile made from this repository's (its runtime packages,
    // which `npm ci` put in the npm cache) lets npm take every package from the cache.
    app = path.join(dir, 'app');
    await fs.promises.mkdir(app);
    const own = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; bin: Record<string, string> };
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; link?: boolean }> };
    const packages: Record<string, unknown> = {
      '': { name: 'app', dependencies: { redloop: tarball } },
      'node_modules/redloop': { version: own.version, resolved: tarball, dependencies: own.dependencies, bin: own.bin },
    };
    for (const [key, entry] of Object.entries(lock.packages)) if (key !== '' && !entry.dev && !entry.link) packages[key] = entry;
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, dependencies: { redloop: tarball } }));
    fs.writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }));
    const install = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: app });
    if (install.code !== 0) {
      throw new Error(`npm ci --offline of the packed tarball failed (the packages come from the npm cache: run npm ci in the repository first):\n${install.stderr}`);
    }
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  it('ships the library, the CLI and their sources, and every source map points to a shipped file', () => {
    expect(files).to.include.members(['package.json', 'README.md', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/bin/redloop.js', 'lib/index.ts']);
    expect(files.filter((f) => /^(dist\/)?(test|benchmarks|examples)\//.test(f)), 'repository-only files').to.deep.equal([]);
    for (const map of files.filter((f) => f.endsWith('.js.map'))) {
      const { sources } = JSON.parse(fs.readFileSync(path.join(app, 'node_modules/redloop', map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        expect(files, `${map} points to ${source}`).to.include(path.posix.join(path.posix.dirname(map), source));
      }
    }
  });

  it('npx redloop --help lists only commands that work, and each one answers --help', async () => {
    const bin = path.join(app, 'node_modules/.bin/redloop');
    const help = await run(bin, ['--help'], { cwd: app });
    expect(help.code, help.stderr).to.equal(0);
    const listed = help.stdout.split('commands:\n')[1]!.split('\n\n')[0]!.split('\n').map((line) => line.trim().split(/\s+/)[0]!);
    expect(listed).to.include('pipe');
    expect(listed).not.to.include('bench'); // repository-only: npm run bench
    for (const name of listed) {
      const sub = await run(bin, [name, '--help'], { cwd: app });
      expect(sub.code, `redloop ${name} --help: ${sub.stderr}`).to.equal(0);
      expect(sub.stdout, `redloop ${name} --help`).to.match(new RegExp(`usage: redloop ${name}`));
    }
  });

  it('the installed redloop pipe loads commands into a real server', async () => {
    const bin = path.join(app, 'node_modules/.bin/redloop');
    const result = await run(bin, ['pipe', '--url', server.url, '--format', 'text'], { cwd: app, input: 'SET pack:a 1\nINCR pack:a\nRPUSH pack:l x y\n' });
    expect(result.code, result.stderr).to.equal(0);
    expect(await server.command('GET', 'pack:a')).to.equal('2');
    expect(await server.command('LLEN', 'pack:l')).to.equal(2);
  });

  it('loads with require() from CommonJS and with import from an ES module', async () => {
    const script = (load: string) => `${load}
      const loop = new EventLoop();
      const conn = loop.connect(${JSON.stringify(server.url)});
      loop.sendCommand(conn, 'GET', 'pack:a').then((v) => { console.log(v); return loop.close(); });`;
    const cjs = path.join(app, 'app.cjs');
    const mjs = path.join(app, 'app.mjs');
    fs.writeFileSync(cjs, script("const { EventLoop } = require('redloop');"));
    fs.writeFileSync(mjs, script("import { EventLoop } from 'redloop';"));
    for (const file of [cjs, mjs]) {
      const result = await run(process.execPath, [file], { cwd: app });
      expect(result.code, `${path.basename(file)}: ${result.stderr}`).to.equal(0);
      expect(result.stdout.trim(), path.basename(file)).to.equal('2');
      expect(result.stderr, path.basename(file)).to.equal(''); // no ExperimentalWarning either
    }
  });
});
