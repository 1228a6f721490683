/**
 * Reading the slot map: the nodes are asked in turn (the ready ones first, in random order, then
 * the seeds) for CLUSTER SHARDS, or CLUSTER SLOTS on servers without it, and the first answer
 * that names any shard wins. The command table (COMMAND) is read once, from the same node.
 */
import type { Connection } from '../../connection/connection.js';
import { ReplyError } from '../../base/errors.js';
import { CommandTable } from '../commands.js';
import { ask } from '../ask.js';
import { parseClusterShards, parseClusterSlots, type TopologyShard } from './topology.js';

export interface ReadMap {
  shards: TopologyShard[];
  /** Read only when none was known. */
  table: CommandTable | undefined;
}

/**
 * The map from the first of `candidates` that can tell, or undefined if none could (or
 * `stopped()` became true meanwhile).
 */
export async function readTopology(candidates: readonly Connection[], useTls: boolean, needTable: boolean, stopped: () => boolean): Promise<ReadMap | undefined> {
  for (const conn of candidates) {
    if (stopped()) return undefined;
    try {
      const via = { host: conn.resolvedOptions.host, port: conn.resolvedOptions.port };
      let shards: TopologyShard[];
      try {
        shards = parseClusterShards(await ask(conn, ['CLUSTER', 'SHARDS'], 2000), useTls, via);
      } catch (err) {
        if (!(err instanceof ReplyError) || !/unknown subcommand|unknown command/i.test(err.message)) throw err;
        shards = parseClusterSlots(await ask(conn, ['CLUSTER', 'SLOTS'], 2000), via);
      }
      if (shards.length === 0) continue; // a node that does not know the cluster yet
      const table = needTable ? new CommandTable(await ask(conn, ['COMMAND'], 5000)) : undefined;
      if (stopped()) return undefined;
      return { shards, table };
    } catch {
      // This node cannot tell; try the next one.
    }
  }
  return undefined;
}

/** The connections to ask, in order: the ready ones the map uses (shuffled), then the seeds. */
export function refreshCandidates(known: Iterable<Connection>, seeds: readonly Connection[]): Connection[] {
  const ready = [...known].filter((c) => c.state === 'ready');
  for (let i = ready.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ready[i], ready[j]] = [ready[j]!, ready[i]!];
  }
  return [...ready, ...seeds.filter((c) => c.state !== 'closed' && !ready.includes(c))];
}
