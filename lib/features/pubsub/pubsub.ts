/**
 * Pub/sub: a Subscription owns connections of its own (opened like the target's), in push
 * mode, so no pipelined command ever meets a push message.
 *
 * Targets: a Connection (everything on one connection), a cluster (SUBSCRIBE/PSUBSCRIBE on one
 * node, which the cluster broadcasts to; SSUBSCRIBE on the owner of each channel's slot), a
 * shard set (sharded channels only: nothing broadcasts between standalone servers).
 *
 * subscription.ts: the API; placement.ts: which connection holds what; sub-connection.ts: one
 * connection's subscriptions and its push frames.
 */
import type { CommandTarget } from '../../connection/target.js';
import { Subscription, type PubSubHost, type SubscribeOptions } from './subscription.js';
import type { Channel } from './sub-connection.js';

export { Subscription } from './subscription.js';
export type { PubSubHost, PubSubMessage, SubscribeOptions } from './subscription.js';
export type { Channel } from './sub-connection.js';

/** loop.subscribe() */
export function subscribe(host: PubSubHost, target: CommandTarget, channels: readonly Channel[], options?: SubscribeOptions): Subscription {
  if (!Array.isArray(channels)) {
    throw new TypeError(`subscribe(): channels must be an array, e.g. loop.subscribe(conn, ['news']) (use [] with { patterns } or { sharded }), got ${channels === null ? 'null' : typeof channels}`);
  }
  return new Subscription(host, target, channels, options);
}
