// The cache's store on its own (no server): the byte bound and LRU order, expiry by ttl and by
// the key's PTTL, invalidation of entries and of reads in flight, clear() generations.
import { expect } from 'chai';
import { MISS, NodeCache, lookupKey, modeOf } from '../lib/cache/store.js';
import { CommandFlag } from '../lib/routing/commands.js';
import { FLAG_BLOCKING, FLAG_NONDETERMINISTIC, FLAG_READONLY, FLAG_SCRIPTING, FLAG_WRITE } from '../lib/cache/classify.js';

function fill(node: NodeCache, key: string, value: unknown, pttl: number = -1, ttl = 0): void {
  const p = node.begin(0, 'GET', key, [key], ttl, -1);
  node.complete(p, value, true, [pttl]);
}

describe('cache store', () => {
  it('keeps a reply and answers it; a key never read is a miss', () => {
    const node = new NodeCache('x', { maxBytes: 1 << 20, ttl: 0 });
    fill(node, 'a', 'va');
    expect(node.get(0, 'GET', 'a', 0)).to.equal('va');
    expect(node.get(0, 'GET', 'b', 0)).to.equal(MISS);
    expect(node.get(1, 'GET', 'a', 0)).to.equal(MISS); // another decoding mode
    expect(node.stats).to.include({ hits: 1, entries: 1 });
  });

  it('never holds more than maxBytes, evicting the least recently used first', () => {
    const node = new NodeCache('x', { maxBytes: 64 * 1024, ttl: 0 });
    for (let i = 0; i < 10_000; i++) {
      fill(node, `k${i}`, 'v'.repeat(100));
      expect(node.stats.bytes).to.be.at.most(64 * 1024);
      if (i === 5) expect(node.get(0, 'GET', 'k0', 0)).to.equal('v'.repeat(100)); // k0 is now recent
    }
    expect(node.stats.evictions).to.be.greaterThan(9000);
    expect(node.get(0, 'GET', 'k9999', 0)).to.not.equal(MISS);
    expect(node.get(0, 'GET', 'k1', 0)).to.equal(MISS);
    expect(node.indexedKeys).to.equal(node.stats.entries);
  });

  it('an entry larger than maxBytes is not kept', () => {
    const node = new NodeCache('x', { maxBytes: 1000, ttl: 0 });
    fill(node, 'big', 'v'.repeat(5000));
    expect(node.stats.entries).to.equal(0);
  });

  it('expires entries by the key\'s PTTL, by ttl and by the caller\'s maxAge', async () => {
    const node = new NodeCache('x', { maxBytes: 1 << 20, ttl: 0 });
    fill(node, 'p', 'v', 30);
    fill(node, 'forever', 'v', -1);
    fill(node, 'missing', null, -2);
    fill(node, 't', 'v', -1, 30);
    expect(node.get(0, 'GET', 'p', 0)).to.equal('v');
    expect(node.get(0, 'GET', 'missing', 0)).to.equal(null);
    await new Promise((r) => setTimeout(r, 40));
    expect(node.get(0, 'GET', 'p', 0)).to.equal(MISS);
    expect(node.get(0, 'GET', 't', 0)).to.equal(MISS);
    expect(node.get(0, 'GET', 'forever', 0)).to.equal('v');
    expect(node.get(0, 'GET', 'forever', 10)).to.equal(MISS); // older than the caller allows
  });

  it('an invalidation drops the entry, and a read in flight then returns but is not kept', () => {
    const node = new NodeCache('x', { maxBytes: 1 << 20, ttl: 0 });
    fill(node, 'a', 'old');
    node.invalidate('a');
    expect(node.get(0, 'GET', 'a', 0)).to.equal(MISS);
    const p = node.begin(0, 'GET', 'a', ['a'], 0, -1);
    expect(node.pending(0, 'GET', 'a')).to.equal(p);
    node.invalidate('a');
    expect(node.pending(0, 'GET', 'a')).to.equal(undefined); // a later caller sends its own read
    node.complete(p, 'maybe-old', true, [-1]);
    expect(node.get(0, 'GET', 'a', 0)).to.equal(MISS);
    expect(node.indexedKeys).to.equal(0);
  });

  it('clear() empties it and no read sent before it is kept', () => {
    const node = new NodeCache('x', { maxBytes: 1 << 20, ttl: 0 });
    fill(node, 'a', 'va');
    const p = node.begin(0, 'GET', 'b', ['b'], 0, -1);
    node.clear();
    expect(node.stats).to.include({ entries: 0, bytes: 0 });
    node.complete(p, 'vb', true, [-1]);
    expect(node.get(0, 'GET', 'b', 0)).to.equal(MISS);
    expect(node.indexedKeys).to.equal(0);
  });

  it('an entry of several keys goes when any of them changes', () => {
    const node = new NodeCache('x', { maxBytes: 1 << 20, ttl: 0 });
    const lookup = lookupKey(['a', 'b'], 0)!;
    const p = node.begin(0, 'SUNION', lookup, ['a', 'b'], 0, -1);
    node.complete(p, ['x'], true, [-1, 5000]);
    fill(node, 'b', 'vb');
    expect(node.get(0, 'SUNION', lookup, 0)).to.deep.equal(['x']);
    node.invalidate('b');
    expect(node.get(0, 'SUNION', lookup, 0)).to.equal(MISS);
    expect(node.get(0, 'GET', 'b', 0)).to.equal(MISS);
  });

  it('drops the entries of slots that moved', () => {
    const node = new NodeCache('x', { maxBytes: 1 << 20, ttl: 0 });
    for (let slot = 0; slot < 10; slot++) node.complete(node.begin(0, 'GET', `k${slot}`, [`k${slot}`], 0, slot), 'v', true, [-1]);
    node.dropSlots((s) => s % 2 === 0);
    expect(node.stats.entries).to.equal(5);
    expect(node.get(0, 'GET', 'k1', 0)).to.equal('v');
    expect(node.get(0, 'GET', 'k2', 0)).to.equal(MISS);
  });

  it('lookup keys never collide across argument shapes', () => {
    const shapes: unknown[][] = [['a'], ['\0sa'], [Buffer.from('a')], ['a', 'b'], ['ab'], ['a b'], [Buffer.from('a'), 'b'], [1], ['1', '']];
    const keys = shapes.map((s) => lookupKey(s, 0));
    expect(keys[7]).to.equal('1'); // a number is sent as its text
    const distinct = new Set(keys.filter((_, i) => i !== 7));
    expect(distinct.size).to.equal(shapes.length - 1);
    expect(lookupKey([{}], 0)).to.equal(undefined);
    expect(modeOf(true, true, false)).to.equal(3);
  });

  it('flag bits agree with the routing layer\'s CommandFlag', () => {
    expect([FLAG_READONLY, FLAG_WRITE, FLAG_BLOCKING, FLAG_NONDETERMINISTIC, FLAG_SCRIPTING]).to.deep.equal([
      CommandFlag.ReadOnly, CommandFlag.Write, CommandFlag.Blocking, CommandFlag.NondeterministicOutput, CommandFlag.Scripting,
    ]);
  });
});
