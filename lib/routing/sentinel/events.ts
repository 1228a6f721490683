/**
 * What the sentinels publish (`PSUBSCRIBE *` on each), reduced to what a client of one master
 * acts on. Messages name instances as `<type> <name> <ip> <port> @ <master-name> <ip> <port>`,
 * a master as `master <name> <ip> <port>`, and +switch-master as `<name> <old-ip> <old-port>
 * <new-ip> <new-port>`.
 */
import type { NodeAddress } from '../cluster/topology.js';

export type SentinelEventKind =
  /** A failover of the master started (or moved on): hold writes. */
  | 'failover-start'
  /** A replica was promoted: `address` is the new master, to check. */
  | 'promoted'
  /** The sentinels switched to a new master (`address`). */
  | 'switch'
  /** The failover ended without a switch (aborted, timed out): check the master again. */
  | 'failover-abort'
  /** The failover is over (+failover-end). */
  | 'failover-end'
  /** The master is objectively down: a failover is coming. */
  | 'odown'
  /** The master is no longer objectively down. */
  | 'odown-end'
  /** Something about a replica changed (added, down, up, reconfigured). */
  | 'replica'
  /** Another event about this master. */
  | 'other';

export interface SentinelEvent {
  kind: SentinelEventKind;
  channel: string;
  /** The instance the event is about: the promoted replica, the new master, the replica. */
  address: NodeAddress | undefined;
  /** The master's address as the sentinel knew it when it published (for +switch-master: the old one). */
  master: NodeAddress | undefined;
}

const FAILOVER_START = new Set(['+try-failover', '+elected-leader', '+selected-slave', '+failover-state-reconf-slaves']);

/** The event, if it is about the master named `name`; undefined otherwise. */
export function parseSentinelEvent(channel: string, message: string, name: string): SentinelEvent | undefined {
  const words = message.split(' ');
  if (channel === '+switch-master') {
    if (words[0] !== name || words.length < 5) return undefined;
    return { kind: 'switch', channel, address: { host: words[3]!, port: Number(words[4]) }, master: { host: words[1]!, port: Number(words[2]) } };
  }
  let about: string | undefined;
  let address: NodeAddress | undefined;
  let master: NodeAddress | undefined;
  const type = words[0];
  if (type === 'master') {
    about = words[1];
    if (words.length >= 4) master = address = { host: words[2]!, port: Number(words[3]) };
  } else {
    const at = words.indexOf('@');
    if (at === -1) return undefined; // +new-epoch, +vote-for-leader... carry no master name
    about = words[at + 1];
    if (words.length >= 4) address = { host: words[2]!, port: Number(words[3]) };
    if (words.length >= at + 4) master = { host: words[at + 2]!, port: Number(words[at + 3]) };
  }
  if (about !== name) return undefined;
  const e = (kind: SentinelEventKind): SentinelEvent => ({ kind, channel, address, master });
  if (channel === '+promoted-slave') return e('promoted');
  if (FAILOVER_START.has(channel) || channel.startsWith('+failover-state-')) return e('failover-start');
  if (channel.startsWith('-failover-abort') || channel === '+failover-end-for-timeout') return e('failover-abort');
  if (channel === '+failover-end') return e('failover-end');
  if (type === 'master' && channel === '+odown') return e('odown');
  if (type === 'master' && channel === '-odown') return e('odown-end');
  if (type === 'slave') return e('replica');
  return e('other');
}

/** The fields of one entry of SENTINEL SENTINELS / SENTINEL REPLICAS (a flat [k, v, k, v...] array, or a map). */
export function fieldsOf(entry: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(entry)) {
    for (let i = 0; i + 1 < entry.length; i += 2) out.set(String(entry[i]), String(entry[i + 1]));
  } else if (entry instanceof Map) {
    for (const [k, v] of entry) out.set(String(k), String(v));
  }
  return out;
}
