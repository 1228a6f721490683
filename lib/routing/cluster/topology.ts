/**
 * A cluster's layout as one node reports it: which master owns which slots, and its replicas.
 * From CLUSTER SHARDS (Redis 7+), or CLUSTER SLOTS on older servers.
 */
import { flatMap } from '../commands.js';

export interface NodeAddress {
  host: string;
  port: number;
}

export interface TopologyNode extends NodeAddress {
  id: string;
  role: 'master' | 'replica';
  /** 'online', 'failed' or 'loading' (CLUSTER SHARDS); CLUSTER SLOTS lists only online ones. */
  health: string;
}

export interface TopologyShard {
  /** [first, last] slot ranges. */
  slots: Array<[number, number]>;
  master: TopologyNode;
  replicas: TopologyNode[];
}

/**
 * The address to reach a node at: its announced endpoint (or ip) and port, or its TLS port
 * when the client speaks TLS. An empty or '?' endpoint means "the address you reached me on".
 */
function nodeAddress(m: Map<string, unknown>, tls: boolean, via: NodeAddress): NodeAddress {
  const endpoint = String(m.get('endpoint') ?? m.get('ip') ?? '');
  const host = endpoint === '' || endpoint === '?' ? via.host : endpoint;
  const tlsPort = m.get('tls-port');
  const port = Number(tls && tlsPort !== undefined ? tlsPort : m.get('port'));
  return { host, port };
}

/** Parses a CLUSTER SHARDS reply; shards without slots (empty masters) are left out. */
export function parseClusterShards(reply: unknown, tls: boolean, via: NodeAddress): TopologyShard[] {
  if (!Array.isArray(reply)) throw new TypeError('CLUSTER SHARDS reply is not an array');
  const shards: TopologyShard[] = [];
  for (const raw of reply) {
    const shard = flatMap(raw);
    const slotList = shard.get('slots');
    const slots: Array<[number, number]> = [];
    if (Array.isArray(slotList)) for (let i = 0; i + 1 < slotList.length; i += 2) slots.push([Number(slotList[i]), Number(slotList[i + 1])]);
    if (slots.length === 0) continue;
    const masters: TopologyNode[] = [];
    const replicas: TopologyNode[] = [];
    for (const rawNode of (shard.get('nodes') as unknown[] | undefined) ?? []) {
      const m = flatMap(rawNode);
      const node: TopologyNode = {
        ...nodeAddress(m, tls, via), id: String(m.get('id')),
        role: m.get('role') === 'master' ? 'master' : 'replica', health: String(m.get('health') ?? 'online'),
      };
      if (node.role === 'master') masters.push(node);
      else replicas.push(node);
    }
    // After a failover, Valkey 8 keeps the failed master in the shard of the replica that took
    // its place, still role master, health fail (Redis 7.0 gives it a shard of its own, without
    // slots): the shard's slots belong to the master that is not failed. A master that failed
    // with no replica to promote is the only one, and still the owner.
    const master = masters.find((n) => n.health !== 'fail') ?? masters[0];
    if (master !== undefined) shards.push({ slots, master, replicas });
  }
  return shards;
}

/** Parses a CLUSTER SLOTS reply (one entry per slot range). */
export function parseClusterSlots(reply: unknown, via: NodeAddress): TopologyShard[] {
  if (!Array.isArray(reply)) throw new TypeError('CLUSTER SLOTS reply is not an array');
  const byMaster = new Map<string, TopologyShard>();
  for (const range of reply as unknown[][]) {
    const toNode = (n: unknown[], role: 'master' | 'replica'): TopologyNode => {
      const host = String(n[0] ?? '');
      return { host: host === '' || host === '?' ? via.host : host, port: Number(n[1]), id: String(n[2] ?? ''), role, health: 'online' };
    };
    const master = toNode(range[2] as unknown[], 'master');
    const key = `${master.host}:${master.port}`;
    let shard = byMaster.get(key);
    if (shard === undefined) {
      shard = { slots: [], master, replicas: range.slice(3).map((n) => toNode(n as unknown[], 'replica')) };
      byMaster.set(key, shard);
    }
    shard.slots.push([Number(range[0]), Number(range[1])]);
  }
  return [...byMaster.values()];
}

/** "MOVED 3999 127.0.0.1:6381" / "ASK ..." → slot and address (IPv6 hosts keep their colons). */
export function parseRedirect(message: string): { slot: number; host: string; port: number } | undefined {
  const parts = message.split(' ');
  if (parts.length < 3) return undefined;
  const slot = Number(parts[1]);
  const addr = parts[2]!;
  const colon = addr.lastIndexOf(':');
  if (!Number.isInteger(slot) || colon === -1) return undefined;
  return { slot, host: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) };
}
