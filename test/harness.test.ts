// Self-test of the server harness in harness/: if this fails, every other suite's
// failures are suspect.
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { runningServers, startRedis, startShards, type RedisServer } from '../harness/redis.js';
import { RawReplyError, rawCommands } from '../harness/resp.js';

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(true));
  });
}

describe('test harness (harness/)', function () {
  this.timeout(30_000);

  it('starts a server, answers PING through the raw client and redis-cli, and stops it', async () => {
    const server = await startRedis();
    expect(server.port).to.be.greaterThan(0);
    expect(server.url).to.equal(`redis://127.0.0.1:${server.port}/0`);
    expect(await server.command('PING')).to.equal('PONG');
    expect(await server.cli('PING')).to.equal('PONG');
    const replies = await server.commands([['SET', 'k', 'v'], ['GET', 'k'], ['NOSUCHCOMMAND']]);
    expect(replies[0]).to.equal('OK');
    expect(replies[1]).to.equal('v');
    expect(replies[2]).to.be.instanceOf(RawReplyError);
    expect(runningServers()).to.include(server);
    await server.stop();
    expect(server.isRunning).to.equal(false);
    expect(await portIsClosed(server.port)).to.equal(true);
    expect(runningServers()).not.to.include(server);
  });

  it('passes extra arguments (requirepass) and authenticates its own helpers', async () => {
    const server = await startRedis({ args: ['--requirepass', 's3cret'] });
    try {
      expect(await server.command('PING')).to.equal('PONG');
      expect(await server.cli('PING')).to.equal('PONG');
      const [reply] = await rawCommands({ host: server.host, port: server.port }, [['PING']]);
      expect(reply).to.be.instanceOf(RawReplyError);
      expect((reply as Error).message).to.match(/NOAUTH/);
    } finally {
      await server.stop();
    }
  });

  it('restarts on the same port after SIGKILL', async () => {
    const server = await startRedis();
    try {
      const port = server.port;
      const pid = server.pid;
      server.kill('SIGKILL');
      expect(await server.waitExit()).to.equal('SIGKILL');
      expect(await portIsClosed(port)).to.equal(true);
      await server.restart();
      expect(server.port).to.equal(port);
      expect(server.pid).not.to.equal(pid);
      expect(await server.command('PING')).to.equal('PONG');
    } finally {
      await server.stop();
    }
  });

  it('stops a SIGSTOPped server', async () => {
    const server = await startRedis();
    server.kill('SIGSTOP');
    await server.stop(2000);
    expect(server.isRunning).to.equal(false);
  });

  it('starts several shards on distinct ports (readiness does not rely on the log level)', async () => {
    const shards: RedisServer[] = await startShards(3, { args: ['--loglevel', 'warning'] });
    try {
      expect(new Set(shards.map((s) => s.port)).size).to.equal(3);
      const replies = await Promise.all(shards.map((s) => s.command('PING')));
      expect(replies).to.deep.equal(['PONG', 'PONG', 'PONG']);
    } finally {
      await Promise.all(shards.map((s) => s.stop()));
    }
  });

  it('starts a TLS server that node:tls can reach with the generated CA', async () => {
    const server = await startRedis({ tls: true });
    try {
      expect(server.url).to.equal(`rediss://127.0.0.1:${server.port}/0`);
      expect(server.ca).to.be.instanceOf(Buffer);
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca: server.ca }, () => {
          socket.write('PING\r\n');
        });
        let data = '';
        socket.on('data', (chunk: Buffer) => {
          data += chunk.toString();
          if (data.endsWith('\r\n')) { socket.destroy(); resolve(data); }
        });
        socket.on('error', reject);
      });
      expect(reply).to.equal('+PONG\r\n');
      expect(await server.cli('PING')).to.equal('PONG');
    } finally {
      await server.stop();
    }
  });
});
