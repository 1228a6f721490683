// Every error class has a stable name and code, and errors.ts alone says what a failure means
// for the layers (redirect, retryable, unwritten, transient in a handshake).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import * as errors from '../lib/base/errors.js';
import {
  AuthError, ClientStateError, ConfigError, ConnectionClosedError, ExecAbortError, MalformedInputError, MassInsertError,
  ProtocolError, RedloopError, ReplyError, RoutingError, TimeoutError, TransactionRetryError, UsageError,
  isRedirect, isRetryable, isTransientHandshakeError, isUnwritten,
} from '../lib/base/errors.js';

describe('errors.ts', () => {
  it('gives every error class a stable name and code', () => {
    const report = { sent: 0, replies: 0, errors: { count: 0, first: [] }, elapsedMs: 0, replyMode: 'on' as const };
    const all: Array<[Error & { code: string }, string, string]> = [
      [new RedloopError('x'), 'RedloopError', 'REDLOOP_ERROR'],
      [new ReplyError('WRONGTYPE no', 'get'), 'ReplyError', 'WRONGTYPE'],
      [new ConnectionClosedError('gone', 'GET', false), 'ConnectionClosedError', 'REDLOOP_CONNECTION_CLOSED'],
      [new TimeoutError('late'), 'TimeoutError', 'REDLOOP_TIMEOUT'],
      [new ProtocolError('bytes'), 'ProtocolError', 'REDLOOP_PROTOCOL'],
      [new AuthError('no'), 'AuthError', 'REDLOOP_AUTH'],
      [new ClientStateError('closed'), 'ClientStateError', 'REDLOOP_CLIENT_STATE'],
      [new ConfigError('bad'), 'ConfigError', 'REDLOOP_CONFIG'],
      [new RoutingError('slots'), 'RoutingError', 'REDLOOP_ROUTING'],
      [new ExecAbortError('EXECABORT Transaction discarded', []), 'ExecAbortError', 'EXECABORT'],
      [new TransactionRetryError(3), 'TransactionRetryError', 'REDLOOP_TRANSACTION_RETRY'],
      [new MalformedInputError('bad', { offset: 1 }), 'MalformedInputError', 'REDLOOP_MALFORMED_INPUT'],
      [new MassInsertError('stopped', report, new Error('why')), 'MassInsertError', 'REDLOOP_MASS_INSERT'],
      [new UsageError('--x'), 'UsageError', 'REDLOOP_USAGE'],
    ];
    for (const [err, name, code] of all) {
      expect(err).to.be.instanceOf(RedloopError);
      expect([err.name, err.code]).to.deep.equal([name, code]);
    }
    // Every class errors.ts exports is in the list above.
    const classes = Object.values(errors).filter((v) => typeof v === 'function' && v.prototype instanceof Error || v === RedloopError);
    expect(classes.map((c) => (c as { name: string }).name).sort()).to.deep.equal(all.map(([e]) => e.constructor.name).sort());
    // ... and in docs/errors.md's table, with its code.
    const doc = fs.readFileSync(fileURLToPath(new URL('../../docs/errors.md', import.meta.url)), 'utf8');
    const rows = doc.split('\n').filter((line) => line.startsWith('| `'));
    for (const [, name, code] of all) {
      const row = rows.find((line) => line.split('|')[1]!.includes(`\`${name}\``));
      expect(row, `docs/errors.md has no row for ${name}`).to.be.a('string');
      if (code.startsWith('REDLOOP_')) expect(row, `${name}'s code in docs/errors.md`).to.include(`\`${code}\``);
    }
  });

  it('classifies failures: redirect, retryable (for a read), unwritten, transient in a handshake', () => {
    const reply = (m: string) => new ReplyError(m, 'GET');
    for (const m of ['MOVED 1 127.0.0.1:7000', 'ASK 1 127.0.0.1:7000', 'TRYAGAIN keys moving', 'CLUSTERDOWN down']) expect(isRedirect(reply(m)), m).to.equal(true);
    for (const m of ['ERR x', 'LOADING loading', 'READONLY replica', 'MOVEDX']) expect(isRedirect(reply(m)), m).to.equal(false);
    expect(isRedirect(new ClientStateError('x'))).to.equal(false);

    for (const e of [reply('LOADING l'), reply('MASTERDOWN m'), reply('TRYAGAIN t'), reply('CLUSTERDOWN c'),
      new ConnectionClosedError('x', 'GET', true), new TimeoutError('t'), new ClientStateError('c')]) expect(isRetryable(e), e.message).to.equal(true);
    for (const e of [reply('ERR x'), reply('MOVED 1 a:1'), reply('BUSY b'), new AuthError('a'), new ProtocolError('p')]) expect(isRetryable(e), e.message).to.equal(false);

    expect(isUnwritten(new ConnectionClosedError('x', 'GET', false))).to.equal(true);
    expect(isUnwritten(new ClientStateError('full'))).to.equal(true);
    expect(isUnwritten(new ConnectionClosedError('x', 'GET', true))).to.equal(false);
    expect(isUnwritten(reply('MOVED 1 a:1'))).to.equal(false);
    expect(isUnwritten(new TimeoutError('t'))).to.equal(false);

    for (const m of ['LOADING l', 'BUSY b', 'MASTERDOWN m', 'TRYAGAIN t', 'CLUSTERDOWN c', 'ERR max number of clients reached']) {
      expect(isTransientHandshakeError(reply(m)), m).to.equal(true);
    }
    for (const m of ['WRONGPASS invalid', 'NOAUTH needed', 'ERR DB index is out of range']) expect(isTransientHandshakeError(reply(m)), m).to.equal(false);
  });
});
