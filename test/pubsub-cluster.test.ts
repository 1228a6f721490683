// Pub/sub on a real Redis Cluster: channels on any node (the cluster broadcasts), sharded
// channels on the owner of their slot, following a slot migration and a failover by themselves.
import { expect } from 'chai';
import { keySlot, type Cluster, type EventLoop, type Subscription } from '../lib/index.js';
import type { RedisCluster } from '../harness/index.js';
import { expectQuietLoopClose, waitUntil, within } from './support/helpers.js';
import { clusterAndLoopPerTest } from './support/fixtures.js';

function nextMessage(sub: Subscription, event: string, ms = 15_000): Promise<unknown[]> {
  return within(new Promise<unknown[]>((resolve) => sub.once(event, (...args: unknown[]) => resolve(args))), ms, `'${event}' on the subscription`);
}

describe('pub/sub on a cluster', function () {
  this.timeout(180_000);
  let cluster: RedisCluster;
  let loop: EventLoop;
  let c: Cluster;
  clusterAndLoopPerTest((f) => ({ cluster, loop, c } = f));

  it('loop.close() with a subscription still open ends it quietly: close resolves, for await ends, no error', async () => {
    const sub = loop.subscribe(c, ['news'], { patterns: ['n*'], sharded: ['orders:{7}'] });
    await expectQuietLoopClose(loop, sub);
  });

  it('SUBSCRIBE on one node hears PUBLISH sent to any master', async () => {
    const sub = loop.subscribe(c, ['news'], { patterns: ['n*'] });
    const got: string[] = [];
    sub.on('message', (_ch: string, m: string) => got.push(m));
    sub.on('pmessage', (_p: string, _ch: string, m: string) => got.push(`p:${m}`));
    await sub.ready;
    for (const m of c.masterConnections) await loop.sendCommand(m, 'PUBLISH', 'news', m.address);
    await waitUntil(() => got.length >= 6, { timeout: 10_000, what: 'six messages' });
    expect(got.filter((m) => !m.startsWith('p:')).sort()).to.deep.equal(c.masterConnections.map((m) => m.address).sort());
    await sub.close();
  });

  it('sharded channels follow a slot migration and a failover, and receive again', async () => {
    const channel = 'orders:{7}';
    const other = 'other:{x}';
    const sub = loop.subscribe(c, [], { sharded: [channel, other] });
    const got: string[] = [];
    sub.on('smessage', (ch: string, m: string) => got.push(`${ch}=${m}`));
    await sub.ready;
    expect(await loop.sendCommand(c, 'SPUBLISH', channel, 'one')).to.equal(1);
    expect(await loop.sendCommand(c, 'SPUBLISH', other, 'o1')).to.equal(1);

    // Move the channel's slot to another master: the server SUNSUBSCRIBEs us there.
    const slot = keySlot(channel);
    const owner = await cluster.nodeForSlot(slot);
    const target = cluster.masters().find((m) => m !== owner && m.slots.every(([a, b]) => keySlot(other) < a || keySlot(other) > b))
      ?? cluster.masters().find((m) => m !== owner)!;
    const resubscribed = nextMessage(sub, 'resubscribed', 30_000);
    await cluster.moveSlot(slot, target);
    await resubscribed;
    expect(await loop.sendCommand(c, 'SPUBLISH', channel, 'two')).to.equal(1);
    expect(await loop.sendCommand(c, 'SPUBLISH', other, 'o2')).to.equal(1);

    // Fail the new owner over to its replica.
    const replica = cluster.replicasOf(await cluster.nodeForSlot(slot))[0]!;
    await cluster.failover(replica);
    // The subscription settles on the promoted node (by SUNSUBSCRIBE, by the new map, or both).
    await waitUntil(async () => {
      const n = await loop.sendCommand(c, 'SPUBLISH', channel, 'probe');
      const owners = c.nodes.filter((node) => node.role === 'master' && node.slots.some(([a, b]) => slot >= a && slot <= b));
      return n === 1 && owners[0]?.address === replica.address;
    }, { timeout: 30_000, every: 100, what: 'the channel to be subscribed on the promoted node' });
    expect(await loop.sendCommand(c, 'SPUBLISH', channel, 'three')).to.equal(1);
    await waitUntil(() => got.includes(`${channel}=three`), { timeout: 10_000, what: 'the message after the failover' });
    const mine = got.filter((m) => m.startsWith(channel) && !m.endsWith('probe'));
    expect(mine).to.deep.equal([`${channel}=one`, `${channel}=two`, `${channel}=three`]);
    expect(got.filter((m) => m.startsWith(other))).to.deep.equal([`${other}=o1`, `${other}=o2`]);
    await sub.close();
  });

  it('a shard set takes sharded channels only', () => {
    const shards = loop.shards([cluster.seedUrl]);
    expect(() => loop.subscribe(shards, ['plain'])).to.throw(/only sharded channels/);
  });
});
