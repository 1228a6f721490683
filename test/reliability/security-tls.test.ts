// Security: TLS (rediss://) against a real TLS redis-server with certificates the harness made
// with openssl; a wrong password gives one clear AuthError and no reconnect loop; a password
// never shows up in an error, an event, util.inspect, JSON or anything printed.
import { inspect } from 'node:util';
import { expect } from 'chai';
import { AuthError, ConfigError, EventLoop, type Future } from '../../lib/index.js';
import { rawCommand, startRedis, type RedisServer } from '../../harness/index.js';
import { nextEvent, outcome, recordEvents, within, errorOf } from '../support/helpers.js';

const PASSWORD = 'Sup3r-S3cret-Hunter2';
const WRONG = 'Wr0ng-S3cret-Hunter3';

/** Everything a value can print as, at full depth. */
function renderings(value: unknown): string[] {
  const out = [
    inspect(value, { depth: 8 }),
    inspect(value, { depth: 4, customInspect: false, showHidden: true }),
  ];
  try { out.push(JSON.stringify(value) ?? ''); } catch { /* circular: inspect covers it */ }
  if (value instanceof Error) out.push(String(value), value.stack ?? '', value.message);
  return out;
}

function expectNoSecret(value: unknown, what: string): void {
  for (const text of renderings(value)) {
    for (const secret of [PASSWORD, WRONG]) {
      if (text.includes(secret)) expect.fail(`${what} shows a password: ${text.slice(0, 300)}`);
    }
  }
}

describe('reliability: security and TLS', function () {
  this.timeout(30_000);

  describe('TLS', () => {
    let server: RedisServer;
    before(async () => { server = await startRedis({ tls: true, args: ['--requirepass', PASSWORD] }); });
    after(async () => { await server?.stop(); });

    it('rediss:// works against a TLS redis-server, with the CA given next to the URL', async () => {
      const loop = new EventLoop();
      try {
        const url = `rediss://:${PASSWORD}@127.0.0.1:${server.port}/0`;
        const conn = loop.connect({ url, tls: { ca: server.ca! } });
        expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
        const big = Buffer.alloc(2 * 1024 * 1024, 7);
        loop.sendCommand(conn, 'SET', 'big', big);
        const back = await loop.send<Buffer>(conn, ['GET', 'big'], { returnBuffers: true });
        expect(back.equals(big)).to.equal(true);
        expect(conn.address).to.equal(`127.0.0.1:${server.port}/0`);
        expectNoSecret(conn, 'a TLS connection');
      } finally {
        await loop.close();
      }
    });

    it('takes the CA from the loop defaults when the URL says rediss://', async () => {
      const loop = new EventLoop({ tls: { ca: server.ca! }, password: PASSWORD });
      try {
        const conn = loop.connect(`rediss://127.0.0.1:${server.port}`);
        expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
        expectNoSecret(loop, 'a loop with a default password');
      } finally {
        await loop.close();
      }
    });

    it('refuses a certificate it cannot verify: an error event, the queued command rejects, no hang', async () => {
      const loop = new EventLoop();
      try {
        const conn = loop.connect({ url: server.url, password: PASSWORD, reconnect: { initialDelay: 5, failQueuedAfter: 1, maxAttempts: 1 } });
        const errored = nextEvent(loop, 'error', (e, c) => c === conn);
        const queued = loop.sendCommand(conn, 'PING');
        const [err] = await errored;
        expect(err.message).to.match(/certificate/i);
        const r = await within(outcome(queued), 5000, 'the queued command');
        expect(r.ok).to.equal(false);
        await within(nextEvent(loop, 'end', (c) => c === conn), 5000, 'the end');
      } finally {
        loop.disconnect();
      }
    });
  });

  describe('passwords', () => {
    let server: RedisServer;
    before(async () => {
      server = await startRedis({ args: ['--requirepass', PASSWORD] });
      await rawCommand(server.endpoint, 'ACL', 'SETUSER', 'alice', 'on', '>alice-pw', '~*', '&*', '+@all');
    });
    after(async () => { await server.stop(); });

    it('a wrong password gives exactly one AuthError, no reconnect loop, and every command rejects with it', async () => {
      const loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 10 } });
      const events = recordEvents(loop);
      try {
        const conn = loop.connect({ port: server.port, password: WRONG, db: 2, name: 'app' });
        const queued = loop.sendCommand(conn, 'PING');
        await within(nextEvent(loop, 'end', (c) => c === conn), 5000, 'the connection to end');
        const q = await outcome(queued);
        expect(q.ok).to.equal(false);
        const err = errorOf<AuthError>(q);
        expect(err).to.be.instanceOf(AuthError);
        expect(err.name).to.equal('AuthError');
        expect(err.message).to.match(/^authentication failed on 127\.0\.0\.1:\d+\/2: WRONGPASS/);
        const later = await outcome(loop.sendCommand(conn, 'PING'));
        expect(!later.ok && later.error instanceof AuthError).to.equal(true);

        const errors = events.filter(([name]) => name === 'error');
        expect(errors, 'one error event').to.have.length(1);
        expect(errors[0]![1]).to.be.instanceOf(AuthError);
        expect(events.filter(([name]) => name === 'reconnecting')).to.have.length(0);
        expect(events.map(([name]) => name)).to.deep.equal(['connect', 'error', 'close', 'end']);
        expect(conn.state).to.equal('closed');
        for (const e of events) expectNoSecret(e, `the "${e[0]}" event`);
      } finally {
        loop.disconnect();
      }
    });

    it('authenticates with a password in options or URL, and as an ACL user', async () => {
      const loop = new EventLoop();
      try {
        const conns = [
          loop.connect({ port: server.port, password: PASSWORD }),
          loop.connect(`redis://:${PASSWORD}@127.0.0.1:${server.port}`),
          loop.connect(`redis://${PASSWORD}@127.0.0.1:${server.port}/1`),
        ];
        for (const c of conns) expect(await loop.sendCommand(c, 'ACL', 'WHOAMI')).to.equal('default');
        const alice = loop.connect({ port: server.port, username: 'alice', password: 'alice-pw' });
        expect(await loop.sendCommand(alice, 'ACL', 'WHOAMI')).to.equal('alice');
        const viaUrl = loop.connect(`redis://alice:alice-pw@127.0.0.1:${server.port}`);
        expect(await loop.sendCommand(viaUrl, 'ACL', 'WHOAMI')).to.equal('alice');
      } finally {
        await loop.close();
      }
    });

    it('replays AUTH, SELECT and SETNAME on every reconnect; a copy of the options authenticates too', async () => {
      const loop = new EventLoop({ reconnect: { initialDelay: 5, maxDelay: 20 } });
      try {
        const conn = loop.connect({ port: server.port, password: PASSWORD, db: 4, name: 'replayed' });
        const id = await loop.sendCommand<number>(conn, 'CLIENT', 'ID');
        const closed = nextEvent(loop, 'close', (c) => c === conn);
        await rawCommand(server.endpoint, 'CLIENT', 'KILL', 'ID', String(id));
        await closed;
        // Queued while down: answered only after AUTH (else NOAUTH), SELECT 4 and SETNAME.
        const [who, name, set] = await within(Promise.all([
          loop.sendCommand(conn, 'ACL', 'WHOAMI'),
          loop.sendCommand(conn, 'CLIENT', 'GETNAME'),
          loop.sendCommand(conn, 'SET', 'where', 'db4'),
        ]), 5000, 'the queued commands');
        expect([who, name, set]).to.deep.equal(['default', 'replayed', 'OK']);
        expect(await rawCommand(server.endpoint, 'DBSIZE')).to.equal(0); // db 0 untouched
        // Another connection like this one (e.g. for a blocking command), from its options.
        const twin = loop.connect({ ...conn.resolvedOptions, name: 'twin' });
        expect(await loop.sendCommand(twin, 'GET', 'where')).to.equal('db4');
        expectNoSecret(conn.resolvedOptions, 'resolvedOptions');
      } finally {
        await loop.close();
      }
    });

    it('never shows a password: errors, events, util.inspect, JSON, and nothing is printed', async () => {
      const printed: string[] = [];
      const writes = { out: process.stdout.write, err: process.stderr.write };
      const capture = (chunk: unknown, ...rest: unknown[]) => {
        printed.push(String(chunk));
        const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        cb?.();
        return true;
      };
      const loop = new EventLoop({ password: PASSWORD, reconnect: { initialDelay: 5, maxDelay: 10, failQueuedAfter: 1, maxAttempts: 2 } });
      const events = recordEvents(loop);
      const thrown: unknown[] = [];
      const futures: Future<unknown>[] = [];
      process.stdout.write = capture as typeof process.stdout.write;
      process.stderr.write = capture as typeof process.stderr.write;
      try {
        // A good connection, a wrong password, a server that is not there.
        const good = loop.connect({ port: server.port });
        futures.push(loop.sendCommand(good, 'PING'));
        const bad = loop.connect({ port: server.port, password: WRONG });
        futures.push(loop.sendCommand(bad, 'PING'));
        const down = await startRedis();
        await down.stop();
        const gone = loop.connect({ port: down.port, password: PASSWORD });
        futures.push(loop.sendCommand(gone, 'PING'));
        // Bad URLs and options that carry the password.
        for (const target of [
          `redis://:${PASSWORD}@127.0.0.1:99999`,
          `redis://user:${PASSWORD}@127.0.0.1/not-a-db`,
          `ftp://:${PASSWORD}@127.0.0.1`,
          `redis://:${PASSWORD}@127.0.0.1?bogus=1`,
          `redis://:pa/ss@wo:rd${PASSWORD}@127.0.0.1:6379`,
          `redis://:${PASSWORD}@[::1`,
          { port: server.port, password: PASSWORD, bogus: true },
          { port: 'x', password: PASSWORD },
          { url: `redis://:${PASSWORD}@127.0.0.1:0` },
        ]) {
          try {
            loop.connect(target as never);
            expect.fail(`connect(${typeof target}) should have thrown`);
          } catch (err) {
            expect(err).to.be.instanceOf(ConfigError);
            thrown.push(err);
          }
        }
        const settled = await within(Promise.all(futures.map(outcome)), 10_000, 'the three commands');
        expect(settled[0]).to.deep.equal({ ok: true, value: 'PONG' });
        await within(nextEvent(loop, 'end', (c) => c === gone), 10_000, 'the connection to the stopped server to give up');

        for (const e of thrown) expectNoSecret(e, 'a ConfigError');
        for (const s of settled) expectNoSecret(s, 'a command outcome');
        for (const e of events) expectNoSecret(e, `the "${e[0]}" event`);
        for (const c of [good, bad, gone]) expectNoSecret(c, 'a connection');
        expectNoSecret(loop, 'the loop');
        expectNoSecret(futures, 'the futures');
      } finally {
        process.stdout.write = writes.out;
        process.stderr.write = writes.err;
        await loop.close();
      }
      expect(printed.join('')).to.equal('');
    });
  });
});
