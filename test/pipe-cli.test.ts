// `redloop pipe` as users run it: the compiled CLI in a child process, stdin from a file or a
// pipe, against a real redis-server.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { EventLoop } from '../lib/index.js';
import { splitArgs } from '../lib/cli/textformat.js';
import { MalformedInputError } from '../lib/protocol/requestframer.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { isMissingBinary, missingBinaryMessage } from '../harness/servers.js';
import { encodeCommand as rawEncode } from '../harness/resp.js';

const CLI = fileURLToPath(new URL('../bin/redloop.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node redloop.js ...args`; stdin is a file (redirected) or bytes written to a pipe. */
function runCli(args: string[], stdin: { file: string } | { bytes: Buffer[] } | 'none'): Promise<Run> {
  return new Promise((resolve, reject) => {
    const fd = typeof stdin === 'object' && 'file' in stdin ? fs.openSync(stdin.file, 'r') : undefined;
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: [fd ?? (stdin === 'none' ? 'ignore' : 'pipe'), 'pipe', 'pipe'],
      env: { ...process.env, REDIS_URL: '' },
    });
    if (fd !== undefined) fs.closeSync(fd);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (typeof stdin === 'object' && 'bytes' in stdin) {
      (async () => {
        for (const b of stdin.bytes) {
          if (!child.stdin!.write(b)) await new Promise((r) => child.stdin!.once('drain', r));
        }
        child.stdin!.end();
      })().catch(reject);
    }
  });
}

describe('redloop pipe (CLI)', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let dir: string;
  let url: string;

  before(async () => {
    server = await startRedis();
    url = server.url;
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-pipe-'));
  });
  after(async () => {
    await server?.stop();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await server.command('FLUSHALL');
  });

  function writeResp(name: string, commands: string[][]): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, Buffer.concat(commands.map((c) => rawEncode(c))));
    return file;
  }

  it('loads a RESP file from redirected stdin, reports the failed command by number, exits 1', async () => {
    const commands: string[][] = [];
    for (let i = 0; i < 100_000; i++) commands.push(['SET', `key:${i}`, `value:${i}`]);
    commands.splice(50_000, 0, ['NOSUCHCOMMAND', 'x']);
    const file = writeResp('sets.resp', commands);
    const run = await runCli(['pipe', '--url', url], { file });
    expect(run.stdout).to.equal('errors: 1, replies: 100001\n');
    expect(run.stderr).to.match(/^command #50001: ERR unknown command 'NOSUCHCOMMAND'/m);
    expect(run.code).to.equal(1);
    expect(await server.command('DBSIZE')).to.equal(100_000);
    expect(await server.command('GET', 'key:99999')).to.equal('value:99999');
  });

  it('reads a file given as an argument and exits 0 when every command succeeded; silent on a non-terminal', async () => {
    const file = writeResp('ok.resp', [['SET', 'a', '1'], ['INCR', 'a'], ['RPUSH', 'l', 'x', 'y']]);
    const run = await runCli(['pipe', '--url', url, file], 'none');
    expect(run).to.deep.equal({ code: 0, stdout: 'errors: 0, replies: 3\n', stderr: '' });
    expect(await server.command('GET', 'a')).to.equal('2');
    expect(await server.command('LLEN', 'l')).to.equal(2);
  });

  it('reads RESP from a pipe in chunks cut anywhere', async () => {
    const commands: string[][] = [];
    for (let i = 0; i < 20_000; i++) commands.push(['HSET', `h:${i % 100}`, `f${i}`, 'v']);
    const whole = Buffer.concat(commands.map((c) => rawEncode(c)));
    const chunks: Buffer[] = [];
    for (let pos = 0, size = 7; pos < whole.length; pos += size, size = (size * 31) % 4093 + 1) chunks.push(whole.subarray(pos, pos + size));
    const run = await runCli(['pipe', '--url', url], { bytes: chunks });
    expect(run.stdout).to.equal('errors: 0, replies: 20000\n');
    expect(run.code).to.equal(0);
    expect(await server.command('HLEN', 'h:7')).to.equal(200);
  });

  it('names the byte offset of malformed RESP, applies what came before, exits 2', async () => {
    const good = Buffer.concat([rawEncode(['SET', 'a', '1']), rawEncode(['SET', 'b', '2'])]);
    const file = path.join(dir, 'bad.resp');
    fs.writeFileSync(file, Buffer.concat([good, Buffer.from('SET c 3\r\n'), rawEncode(['SET', 'd', '4'])]));
    const run = await runCli(['pipe', '--url', url], { file });
    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('errors: 0, replies: 2\n');
    expect(run.stderr).to.include(`malformed RESP at byte ${good.length}`);
    expect(run.stderr).to.include('inline commands are not accepted');
    expect(await server.command('MGET', 'a', 'b', 'c', 'd')).to.deep.equal(['1', '2', null, null]);
  });

  it('reads one command per line with redis-cli quoting (--format text), names failed lines, exits 1', async () => {
    const lines = [
      'SET plain value',
      '',
      'SET "with space" "a b"',
      'SET esc "t\\there\\nnl \\"q\\" \\\\ \\x41\\xff"',
      '   ',
      "SET single 'it\\'s \"fine\"'\r",
      'INCR plain',
      'RPUSH list a b c',
    ];
    const file = path.join(dir, 'cmds.txt');
    fs.writeFileSync(file, lines.join('\n')); // no newline after the last line
    const run = await runCli(['pipe', '--url', url, '--format', 'text'], { file });
    expect(run.stdout).to.equal('errors: 1, replies: 6\n');
    expect(run.stderr).to.equal('line 7: ERR value is not an integer or out of range\n');
    expect(run.code).to.equal(1);
    expect(await server.command('MGET', 'plain', 'with space', 'single')).to.deep.equal(['value', 'a b', 'it\'s "fine"']);
    expect(await server.command('LLEN', 'list')).to.equal(3);
    const loop = new EventLoop();
    try {
      const conn = loop.connect(url);
      const esc = await loop.send<Buffer>(conn, ['GET', 'esc'], { returnBuffers: true });
      expect(esc.equals(Buffer.concat([Buffer.from('t\there\nnl "q" \\ A'), Buffer.from([0xff])]))).to.equal(true);
    } finally {
      await loop.close();
    }
  });

  it('names the line of malformed text, applies the lines before it, exits 2', async () => {
    const file = path.join(dir, 'bad.txt');
    fs.writeFileSync(file, 'SET a 1\nSET b 2\n\nSET c "unterminated\nSET d 4\n');
    const run = await runCli(['pipe', '--url', url, '--format', 'text'], { file });
    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('errors: 0, replies: 2\n');
    expect(run.stderr).to.match(/malformed input: line 4, column 7: unbalanced double quote/);
    expect(await server.command('MGET', 'a', 'b', 'c', 'd')).to.deep.equal(['1', '2', null, null]);
  });

  it('--replies off: loads everything, says that server errors are not counted', async () => {
    const commands: string[][] = [];
    for (let i = 0; i < 50_000; i++) commands.push(['SET', `key:${i}`, 'v']);
    commands.push(['NOSUCHCOMMAND']);
    const file = writeResp('off.resp', commands);
    const run = await runCli(['pipe', '--url', url, '--replies', 'off'], { file });
    expect(run.code).to.equal(0);
    expect(run.stdout).to.equal('errors: 0, replies: 0\n');
    expect(run.stderr).to.match(/--replies off: the server sent no replies, so its errors are not counted/);
    expect(await server.command('DBSIZE')).to.equal(50_000);
  });

  it('splits lines exactly as redis-cli does (same lines through both, values compared)', async () => {
    const values = [
      'plain', '"a b"', "'a b'", '"\\x41\\x7a\\xzz\\q"', '"\\xff\\xfe\\x00"', '"\\n\\r\\t\\b\\a"', '"\\"\\\\"',
      "'it\\'s'", "'back\\slash \\n'", 'a"b c"', "a'b c'", 'back\\slash', '""', "''", '"é ü"', 'naïve',
    ];
    const lines = (prefix: string) => values.map((v, i) => `SET ${prefix}:${i} ${v}`).join('\n') + '\n';
    const cliFile = path.join(dir, 'cli.txt');
    const oursFile = path.join(dir, 'ours.txt');
    fs.writeFileSync(cliFile, lines('cli'));
    fs.writeFileSync(oursFile, lines('ours'));
    await new Promise<void>((resolve, reject) => {
      const fd = fs.openSync(cliFile, 'r');
      const cliBin = server.binaries.cli; // valkey-cli on a Valkey server: same quoting (sdssplitargs)
      const child = spawn(cliBin, ['-h', server.host, '-p', String(server.port)], { stdio: [fd, 'ignore', 'inherit'] });
      fs.closeSync(fd);
      child.on('error', (err) => reject(isMissingBinary(err) ? new Error(missingBinaryMessage('cli', server.binaries)) : err));
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cliBin} exited ${code}`))));
    });
    const run = await runCli(['pipe', '--url', url, '--format', 'text', oursFile], 'none');
    expect(run.stdout).to.equal(`errors: 0, replies: ${values.length}\n`);
    const loop = new EventLoop({ returnBuffers: true });
    try {
      const conn = loop.connect(url);
      for (let i = 0; i < values.length; i++) {
        const [cli, ours] = await Promise.all([loop.sendCommand(conn, 'GET', `cli:${i}`), loop.sendCommand(conn, 'GET', `ours:${i}`)]);
        expect(cli, `redis-cli stored ${values[i]}`).to.be.instanceOf(Buffer);
        expect((ours as Buffer).toString('hex'), values[i]).to.equal((cli as Buffer).toString('hex'));
      }
    } finally {
      await loop.close();
    }
  });

  it('exits 2 on bad usage or an unreachable server, 0 on --help', async () => {
    const usage = await runCli(['pipe', '--format', 'csv'], 'none');
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.match(/--format must be resp or text/);
    const tooLong = await runCli(['pipe', '--timeout', '3000000'], 'none'); // more ms than a timer holds
    expect(tooLong.code).to.equal(2);
    expect(tooLong.stderr).to.match(/--timeout must be a number of seconds, at most 2147483/);
    const help = await runCli(['pipe', '--help'], 'none');
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^usage: redloop pipe/);
    const file = writeResp('one.resp', [['PING']]);
    const down = await runCli(['pipe', '--url', 'redis://127.0.0.1:1'], { file });
    expect(down.code).to.equal(2);
    expect(down.stderr).to.match(/ECONNREFUSED/);
    expect(down.stdout).to.equal('errors: 0, replies: 0\n');
  });

  it('an unknown command exits 2 with the usage; bench says it runs from a clone', async () => {
    const bench = await runCli(['bench'], 'none');
    expect(bench.code).to.equal(2);
    expect(bench.stderr).to.match(/unknown command "bench"\nthe benchmark suite runs from a clone of the repository \(npm run bench\)/);
    expect(bench.stderr).to.match(/usage: redloop <command>/);
    const other = await runCli(['pipes'], 'none');
    expect(other.code).to.equal(2);
    expect(other.stderr).not.to.match(/benchmark/);
  });
});

describe('text format: splitArgs (redis-cli quoting)', () => {
  const cases: Array<[string, Array<string | number[]>]> = [
    ['SET key value', ['SET', 'key', 'value']],
    ['  SET\tkey   value  ', ['SET', 'key', 'value']],
    ['SET k "a b"', ['SET', 'k', 'a b']],
    ['SET k ""', ['SET', 'k', '']],
    ["SET k ''", ['SET', 'k', '']],
    ['SET k "\\n\\r\\t\\b\\a\\"\\\\\\q"', ['SET', 'k', '\n\r\t\b\x07"\\q']],
    ['SET k "\\x41\\x7a\\xzz"', ['SET', 'k', 'Azxzz']],
    ['SET k "\\xff\\x00é"', ['SET', 'k', [0xff, 0x00, 0xc3, 0xa9]]],
    ["SET k 'a\\'b\\n'", ['SET', 'k', "a'b\\n"]],
    ['SET k a"b c"', ['SET', 'k', 'ab c']],
    ['SET k back\\slash', ['SET', 'k', 'back\\slash']],
    ['', []],
    ['   ', []],
  ];
  for (const [line, expected] of cases) {
    it(`${JSON.stringify(line)}`, () => {
      const got = splitArgs(line).map((a) => (Buffer.isBuffer(a) ? [...a] : a));
      expect(got).to.deep.equal(expected);
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['SET k "open', /line 3, column 7: unbalanced double quote/],
    ["SET k 'open", /line 3, column 7: unbalanced single quote/],
    ['SET k "a"b', /line 3, column 10: a closing quote must be followed by a space/],
    ["SET k 'a'b", /line 3, column 10: a closing quote must be followed by a space/],
  ];
  for (const [line, re] of bad) {
    it(`rejects ${JSON.stringify(line)}`, () => {
      expect(() => splitArgs(line, 3)).to.throw(MalformedInputError, re);
    });
  }
});
