// What a program gets without any cleanup code: it exits when its work is done, even if it
// forgets close() or its server is unreachable, and an error nobody listens for is printed once.
// Each case is a child process; a process that does not exit is killed and the test fails.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { findFreePort, startRedis, type RedisServer } from '../harness/redis.js';

const LIB = pathToFileURL(fileURLToPath(new URL('../lib/index.js', import.meta.url))).href;

interface Exit { code: number | null; signal: string | null; stdout: string; stderr: string }

/** Runs an ES module script; kills it (and fails) if it has not exited after `limitMs`. */
async function runScript(dir: string, body: string, limitMs = 20_000): Promise<Exit> {
  const file = path.join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
  fs.writeFileSync(file, `import { EventLoop } from ${JSON.stringify(LIB)};\n${body}\n`);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  let killed = false;
  const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, limitMs);
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  if (killed) throw new Error(`the process did not exit within ${limitMs} ms; stdout: ${stdout} stderr: ${stderr}`);
  return { code, signal, stdout, stderr };
}

describe('processes that exit', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let dir: string;

  before(async () => {
    server = await startRedis();
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-exit-'));
  });
  after(async () => {
    await server?.stop();
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  });

  it('a program that forgets close() exits once its replies are in, and prints nothing else', async () => {
    const run = await runScript(dir, `
      const loop = new EventLoop();
      const conn = loop.connect(${JSON.stringify(server.url)});
      loop.sendCommand(conn, 'SET', 'exit:a', 'x');
      console.log(await loop.sendCommand(conn, 'GET', 'exit:a'));`);
    expect(run).to.deep.equal({ code: 0, signal: null, stdout: 'x\n', stderr: '' });
  });

  it('commands nobody awaits still reach the server before the process exits', async () => {
    const run = await runScript(dir, `
      const loop = new EventLoop();
      const conn = loop.connect(${JSON.stringify(server.url)});
      for (let i = 0; i < 1000; i++) loop.sendCommand(conn, 'INCR', 'exit:counter');`);
    expect(run.code, run.stderr).to.equal(0);
    expect(await server.command('GET', 'exit:counter')).to.equal('1000');
  });

  it('a program that waits for "ready" before sending is not cut short while it connects', async () => {
    const run = await runScript(dir, `
      const loop = new EventLoop();
      const conn = loop.connect(${JSON.stringify(server.url)});
      await new Promise((resolve) => loop.once('ready', resolve));
      console.log(await loop.sendCommand(conn, 'PING'));`);
    expect(run).to.deep.equal({ code: 0, signal: null, stdout: 'PONG\n', stderr: '' });
  });

  it('an unreachable server: the first error is printed once at once, the command rejects, and the process exits', async () => {
    const port = await findFreePort(); // nothing listens there
    const run = await runScript(dir, `
      const loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20, failQueuedAfter: 4 } });
      const conn = loop.connect({ port: ${port} });
      try {
        await loop.sendCommand(conn, 'PING');
      } catch (err) {
        console.log(err.name, err.written);
      }`);
    expect(run.code).to.equal(0);
    expect(run.stdout).to.equal('ConnectionClosedError false\n');
    const warnings = run.stderr.split('\n').filter((line) => line.includes('RedloopWarning'));
    expect(warnings, run.stderr).to.have.length(1); // several failed attempts, one line
    expect(warnings[0]).to.include(`ECONNREFUSED 127.0.0.1:${port}`).and.include("loop.on('error'");
  });

  for (const kind of ['shards', 'cluster'] as const) {
    it(`a ${kind === 'shards' ? 'shard set' : 'cluster'} whose servers are unreachable: a command sent before they answered rejects (or whenReady does) before the process exits`, async () => {
      const ports = [await findFreePort(), await findFreePort()]; // nothing listens there
      const run = await runScript(dir, `
        const loop = new EventLoop({ connectTimeout: 1500, reconnect: { initialDelay: 5, maxDelay: 20, failQueuedAfter: 4 } });
        loop.on('error', () => {});
        const target = loop.${kind}(${JSON.stringify(ports.map((p) => `redis://127.0.0.1:${p}`))});
        const ready = target.whenReady().then(() => 'ready', (e) => e.name);
        try {
          await loop.sendCommand(target, 'SET', 'k', 'v');
          console.log('resolved');
        } catch (err) {
          console.log(err.name, err.written);
        }
        console.log(await ready);`);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(kind === 'shards' ? /^TimeoutError undefined\n/ : /^ConnectionClosedError false\n/);
      expect(run.stdout.split('\n')[1]).to.match(/Error$/);
    });
  }

  it('an error listener replaces the printed warning', async () => {
    const port = await findFreePort();
    const run = await runScript(dir, `
      const loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20, failQueuedAfter: 3 } });
      let errors = 0;
      loop.on('error', () => { errors++; });
      const conn = loop.connect({ port: ${port} });
      await loop.sendCommand(conn, 'PING').catch(() => console.log('rejected after', errors >= 3 ? '3+' : errors, 'errors'));`);
    expect(run).to.deep.equal({ code: 0, signal: null, stdout: 'rejected after 3+ errors\n', stderr: '' });
  });

  it('a connection whose server went away keeps reconnecting, but does not hold an idle process', async () => {
    const doomed = await startRedis();
    try {
      const run = await runScript(dir, `
        const loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20 } });
        loop.on('error', () => {});
        const conn = loop.connect(${JSON.stringify(doomed.url)});
        console.log(await loop.sendCommand(conn, 'PING'));
        const reconnecting = new Promise((resolve) => loop.once('reconnecting', resolve));
        await loop.sendCommand(conn, 'SHUTDOWN', 'NOSAVE').catch((err) => console.log(err.name));
        await reconnecting;
        console.log(conn.state); // and nothing after this keeps the process: it exits`);
      expect(run).to.deep.equal({ code: 0, signal: null, stdout: 'PONG\nConnectionClosedError\nreconnecting\n', stderr: '' });
    } finally {
      await doomed.stop();
    }
  });
});
