// Optimistic transactions (loop.transaction) and lent connections (loop.withConnection) on a
// real server: WATCH only on the dedicated connection, retries on abort, clean returns, and a
// pool that never grows past its limit.
import { expect } from 'chai';
import { ConfigError, EventLoop, NestedTransactionError, TimeoutError, TransactionRetryError, type Connection } from '../lib/index.js';
import { lendingPool } from '../lib/features/transactions/pool.js';
import { turnStorageEnabled } from '../lib/features/transactions/key-queue.js';
import type { RedisServer } from '../harness/index.js';
import { errorOf, outcome, waitUntil, within, type Outcome } from './support/helpers.js';
import { serverAndLoopPerTest } from './support/fixtures.js';
import { startHammer } from './support/hammer.js';

/** The CLIENT LIST line of the connection whose CLIENT ID is `id`, as a map. */
async function clientInfo(server: RedisServer, id: number): Promise<Map<string, string>> {
  const line = ((await server.command('CLIENT', 'LIST', 'ID', id)) as string).trim();
  return new Map(line.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

describe('transactions and lent connections', function () {
  let server: RedisServer;
  let loop: EventLoop;
  let conn: Connection;
  serverAndLoopPerTest((f) => ({ server, loop, conn } = f));

  it('20 callers x 50 increments of one balance end exactly at 1000: callers of this loop never abort each other', async () => {
    let runs = 0;
    let aborts = 0;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 50; i++) {
        await loop.transaction(conn, 'balance', async (tx) => {
          runs++;
          if (tx.attempt > 1) aborts++;
          await tx.send(['WATCH', 'balance']);
          const balance = Number(await tx.send(['GET', 'balance']));
          return tx.exec([['SET', 'balance', balance + 1]]);
        }); // default options: maxAttempts 16, poolSize 4
      }
    };
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => outcome(worker())));
    console.log(`      single server, 20 x 50: ${runs} callback runs for 1000 increments (${(runs / 1000).toFixed(3)} per increment), ${aborts} aborted`);
    expect(outcomes.filter((o) => !o.ok)).to.deep.equal([]);
    expect(await server.command('GET', 'balance')).to.equal('1000');
    expect(aborts).to.equal(0); // nobody outside the loop wrote the key
    expect(runs).to.equal(1000);
    const pool = await lendingPool(loop, conn, null);
    expect(pool.peak).to.equal(1); // one at a time on one key: one lent connection is enough
  });

  it('with a second process writing the same key, every caller finishes or fails with TransactionRetryError, and no increment is lost', async () => {
    const hammer = await startHammer(server.port, 'balance', 1);
    let runs = 0;
    let committed = 0;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        await loop.transaction(conn, 'balance', async (tx) => {
          runs++;
          await tx.send(['WATCH', 'balance']);
          const balance = Number(await tx.send(['GET', 'balance']));
          const r = await tx.exec([['SET', 'balance', balance + 1]]);
          if (r !== null) committed++;
          return r;
        });
      }
    };
    const outcomes: Array<Outcome<void>> = await Promise.all(Array.from({ length: 10 }, () => outcome(worker())));
    const outside = await hammer.stop();
    const failed = outcomes.filter((o) => !o.ok).map((o) => (o as { error: Error }).error);
    console.log(`      single server, 10 x 20 against an outside writer (${outside} INCRs): ${committed} committed in ${runs} callback runs ` +
      `(${(runs / Math.max(1, committed)).toFixed(3)} per increment), ${failed.length} caller(s) gave up`);
    for (const err of failed) expect(err).to.be.instanceOf(TransactionRetryError);
    expect(Number(await server.command('GET', 'balance'))).to.equal(committed + outside);
    expect(committed).to.be.at.least((10 - failed.length) * 20);
  });

  it('transactions on different keys run side by side; the same key on a Buffer and a string queues together', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const a = loop.transaction(conn, 'ka', async (tx) => { await gate; return tx.exec([['SET', 'ka', '1']]); });
    // 'kb' is another key: it must not wait behind 'ka' (else this never releases the gate)
    await loop.transaction(conn, 'kb', async (tx) => { release(); return tx.exec([['SET', 'kb', '1']]); });
    expect(await a).to.deep.equal(['OK']);
    const order: string[] = [];
    let open!: () => void;
    const opened = new Promise<void>((r) => { open = r; });
    const first = loop.transaction(conn, 'same', async () => { order.push('first in'); await opened; order.push('first out'); });
    const second = loop.transaction(conn, Buffer.from('same'), async () => { order.push('second'); });
    await new Promise((r) => setTimeout(r, 20));
    open();
    await Promise.all([first, second]);
    expect(order).to.deep.equal(['first in', 'first out', 'second']);
  });

  it('a transaction started inside a callback on the same key and node rejects at once with NestedTransactionError, never waits for itself', async () => {
    const other = loop.connect(server.url); // another target, the same node: the same turn
    let innerRuns = 0;
    const inner = async (): Promise<string> => { innerRuns++; return 'ran'; };
    // Bounded: before, the nested call waited for its caller's turn forever.
    const seen = await within(loop.transaction(conn, 'bal', async (tx) => {
      const errs: Outcome<unknown>[] = [];
      errs.push(await outcome(loop.transaction(conn, 'bal', inner)));
      errs.push(await outcome(loop.transaction(other, Buffer.from('bal'), inner)));
      // Deeper: through a transaction on another key (which runs) and a lent connection.
      const deep = await loop.transaction(conn, 'elsewhere', async () => {
        const viaLent = await loop.withConnection(conn, null, async () => outcome(loop.transaction(conn, 'bal', inner)));
        return [await outcome(loop.transaction(conn, 'bal', inner)), viaLent];
      });
      errs.push(...deep);
      // Not awaited when started: rejected all the same.
      const unawaited = loop.transaction(conn, 'bal', inner);
      errs.push(await outcome(unawaited));
      // The outer callback caught them and goes on: its block commits.
      await tx.send(['WATCH', 'bal']);
      const n = Number(await tx.send(['GET', 'bal']));
      await tx.exec([['SET', 'bal', n + 1]]);
      return errs;
    }), 5000, 'the outer transaction (a nested one on the same key must not wait for its own turn)');
    expect(seen).to.have.length(5);
    for (const o of seen) {
      const err = errorOf(o);
      expect(err).to.be.instanceOf(NestedTransactionError);
      expect((err as NestedTransactionError).code).to.equal('REDLOOP_NESTED_TRANSACTION');
      expect(err.message).to.match(/same key on the same node .* forever/);
    }
    expect(innerRuns).to.equal(0);
    expect(await server.command('GET', 'bal')).to.equal('1');

    // Let through: another key, key null and another loop, inside the turn of 'bal'.
    const other2 = new EventLoop();
    try {
      const conn2 = other2.connect(server.url);
      const ok = await within(loop.transaction(conn, 'bal', async () => [
        await loop.transaction(conn, 'bal2', inner),
        await loop.transaction(conn, null, inner),
        await other2.transaction(conn2, 'bal', inner),
      ]), 5000, 'transactions that do not take the held turn');
      expect(ok).to.deep.equal(['ran', 'ran', 'ran']);
    } finally {
      await other2.close();
    }

    // A promise the callback left behind that starts a transaction after the outer one resolved
    // is not nested any more: it takes its turn.
    let outerDone!: () => void;
    const gate = new Promise<void>((r) => { outerDone = r; });
    let later: Promise<string> | undefined;
    await loop.transaction(conn, 'bal', async () => { later = gate.then(() => loop.transaction(conn, 'bal', inner)); });
    outerDone();
    expect(await within(later!, 5000, 'a transaction left behind by a finished callback')).to.equal('ran');
  });

  it('the storage that tracks turns exists only while a transaction holds one (it slows every promise of the process)', async () => {
    const seen: boolean[] = [];
    await Promise.all([1, 2, 3].map((i) => loop.transaction(conn, `k${i % 2}`, async (tx) => {
      seen.push(turnStorageEnabled());
      await tx.send(['WATCH', `k${i % 2}`]);
      return tx.exec([['INCR', `k${i % 2}`]]);
    })));
    expect(seen).to.deep.equal([true, true, true]);
    await waitUntil(() => !turnStorageEnabled(), { timeout: 5000, what: 'the turn storage to be disabled' });
    await loop.transaction(conn, 'k0', async (tx) => tx.exec([['INCR', 'k0']]));
    expect(turnStorageEnabled()).to.equal(true); // kept a little while, for the next turn
    await waitUntil(() => !turnStorageEnabled(), { timeout: 5000, what: 'the turn storage to be disabled again' });
  });

  it('a caller waits for a pool connection at most acquireTimeout, then gets a TimeoutError that says what to do', async () => {
    let hold!: () => void;
    const held = new Promise<void>((r) => { hold = r; });
    const first = loop.withConnection(conn, null, () => held, { poolSize: 1 });
    const err = errorOf(await outcome(loop.withConnection(conn, null, async () => 'never', { acquireTimeout: 50 })));
    expect(err).to.be.instanceOf(TimeoutError);
    expect(err.message).to.match(/acquireTimeout/);
    expect(err.message).to.match(/poolSize/);
    const third = loop.withConnection(conn, null, async (c) => loop.sendCommand(c, 'PING'), { acquireTimeout: 0 });
    hold();
    await first;
    expect(await third).to.equal('PONG'); // the waiter that timed out left the line: the next one got it
    expect(errorOf(await outcome(loop.withConnection(conn, null, async () => 1, { acquireTimeout: -1 })))).to.be.instanceOf(ConfigError);
  });

  it('keeps WATCH off the shared connection: a block there runs while a transaction watches the same key', async () => {
    let runs = 0;
    const r = await loop.transaction(conn, 'k', async (tx) => {
      runs++;
      expect(tx.connection).to.not.equal(conn);
      await tx.send(['WATCH', 'k']);
      // Not aborted: the WATCH is not on the shared connection. But it fires the transaction's.
      if (tx.attempt === 1) expect(await loop.multi(conn, [['SET', 'k', 'shared']])).to.deep.equal(['OK']);
      return tx.exec([['GET', 'k']]);
    });
    expect(r).to.deep.equal(['shared']);
    expect(runs).to.equal(2);
  });

  it('tx.send takes the per-command options loop.send takes (bigInt, returnBuffers, timeout)', async () => {
    await loop.sendCommand(conn, 'SET', 'exact', '9007199254740993');
    const [n, raw] = await loop.transaction(conn, 'exact', async (tx) =>
      [await tx.send(['INCRBY', 'exact', 1], { bigInt: true, timeout: 5000 }), await tx.send(['GET', 'exact'], { returnBuffers: true })] as const);
    expect(n).to.equal(9007199254740994n);
    expect(Buffer.isBuffer(raw)).to.equal(true);
  });

  it('gives up with TransactionRetryError after maxAttempts aborts', async () => {
    let runs = 0;
    const err = errorOf(await outcome(loop.transaction(conn, 'hot', async (tx) => {
      runs++;
      await tx.send(['WATCH', 'hot']);
      await server.command('INCR', 'hot'); // somebody else writes in between, every time
      return tx.exec([['SET', 'hot', 'mine']]);
    }, { maxAttempts: 3 })));
    expect(err).to.be.instanceOf(TransactionRetryError);
    expect(err.message).to.match(/maxAttempts/);
    expect(runs).to.equal(3);
    expect(await server.command('GET', 'hot')).to.equal('3');
  });

  it('a callback that throws leaves no WATCH and no open MULTI behind on the pooled connection', async () => {
    let lent: Connection | undefined;
    const thrown = errorOf(await outcome(loop.transaction(conn, 'w', async (tx) => {
      lent = tx.connection;
      await tx.send(['WATCH', 'w']);
      throw new Error('callback failed');
    }, { poolSize: 1 })));
    expect(thrown.message).to.equal('callback failed');
    await server.command('SET', 'w', 'changed'); // would fire a WATCH left behind
    const id = await loop.withConnection(conn, null, async (c) => {
      expect(c).to.equal(lent); // the same pooled connection
      return loop.sendCommand(c, 'CLIENT', 'ID') as Promise<number>;
    });
    const info = await clientInfo(server, id);
    expect(info.get('multi')).to.equal('-1');
    expect(info.get('flags')).to.not.include('x');
    expect(await loop.transaction(conn, 'w', (tx) => tx.exec([['SET', 'w', 'after']]))).to.deep.equal(['OK']);

    // A MULTI opened by hand on a lent connection is DISCARDed when the callback throws.
    await outcome(loop.withConnection(conn, null, async (c) => {
      await loop.send(c, ['MULTI']);
      await loop.send(c, ['SET', 'x', '1']);
      throw new Error('half way');
    }));
    const after = await loop.withConnection(conn, null, async (c) => {
      expect(c).to.equal(lent);
      return [await loop.send(c, ['GET', 'x']), await clientInfo(server, Number(await loop.send(c, ['CLIENT', 'ID'])))] as const;
    });
    expect(after[0]).to.equal(null); // not QUEUED: no MULTI was open
    expect(after[1].get('multi')).to.equal('-1');
    expect(await server.command('EXISTS', 'x')).to.equal(0);
  });

  it('withConnection runs a blocking command without holding up the shared connection; the pool never grows past its limit', async () => {
    let inside = 0;
    let most = 0;
    const pops = Array.from({ length: 12 }, (_, i) => loop.withConnection(conn, null, async (c) => {
      inside++;
      most = Math.max(most, inside);
      try {
        return await loop.send(c, ['BLPOP', `jobs:${i % 3}`, 0], { timeout: 0 });
      } finally {
        inside--;
      }
    }, { poolSize: 3 }));
    // Three BLPOPs hold the three lent connections; the shared one answers meanwhile.
    expect(await loop.sendCommand(conn, 'PING')).to.equal('PONG');
    for (let i = 0; i < 12; i++) await loop.sendCommand(conn, 'RPUSH', `jobs:${i % 3}`, `job${i}`);
    const got = (await Promise.all(pops)) as Array<[string, string]>;
    expect(got.map((g) => g[1]).sort()).to.deep.equal(Array.from({ length: 12 }, (_, i) => `job${i}`).sort());
    expect(most).to.equal(3);
    const pool = await lendingPool(loop, conn, null);
    expect(pool.limit).to.equal(3);
    expect(pool.peak).to.equal(3);
    expect(pool.size).to.be.at.most(3);
    expect(loop.connections.length).to.be.at.most(4); // the shared one and at most three lent
  });

  it('destroys a lent connection that cannot be cleaned (a BLPOP still blocks it) and opens a fresh one', async () => {
    let first: Connection | undefined;
    const err = errorOf(await outcome(loop.withConnection(conn, null, async (c) => {
      first = c;
      loop.send(c, ['BLPOP', 'never', 0], { timeout: 0 }).then(() => {}, () => {});
      throw new Error('gave up waiting');
    }, { poolSize: 1 })));
    expect(err.message).to.equal('gave up waiting');
    await within(first!.whenClosed(), 10_000, 'the uncleanable connection to close'); // destroyed, not pooled
    const second = await loop.withConnection(conn, null, async (c) => {
      expect(c).to.not.equal(first);
      return loop.sendCommand(c, 'PING');
    });
    expect(second).to.equal('PONG');
    const pool = await lendingPool(loop, conn, null);
    expect(pool.size).to.equal(1);
  });

  it('refuses MULTI/EXEC through tx.send, a bad callback (TypeError) and a bad pool size (ConfigError)', async () => {
    await loop.transaction(conn, 'k', async (tx) => {
      const err = errorOf(await outcome(tx.send(['MULTI'])));
      expect(err).to.be.instanceOf(TypeError);
      expect(err.message).to.match(/tx\.exec/);
    });
    expect(errorOf(await outcome(loop.transaction(conn, 'k', 'x' as never)))).to.be.instanceOf(TypeError);
    expect(errorOf(await outcome(loop.withConnection(conn, 'k', async () => 1, { poolSize: 0 })))).to.be.instanceOf(ConfigError);
  });

  it('refuses an unknown option name (a misspelt maxAttempts) with a ConfigError naming it, and runs nothing', async () => {
    let runs = 0;
    const tx = errorOf(await outcome(loop.transaction(conn, 'k', async () => { runs++; }, { maxAtempts: 3 } as never)));
    expect(tx).to.be.instanceOf(ConfigError);
    expect(tx.message).to.match(/transaction\(\): unknown option "maxAtempts" \(known: poolSize, acquireTimeout, maxAttempts, backoffBase, backoffMax\)/);
    const lent = errorOf(await outcome(loop.withConnection(conn, 'k', async () => { runs++; }, { maxAttempts: 3 } as never)));
    expect(lent).to.be.instanceOf(ConfigError);
    expect(lent.message).to.match(/withConnection\(\): unknown option "maxAttempts"/);
    expect(errorOf(await outcome(loop.transaction(conn, 'k', async () => { runs++; }, 'fast' as never)))).to.be.instanceOf(TypeError);
    expect(runs).to.equal(0);
  });
});
