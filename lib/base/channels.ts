/**
 * The `node:diagnostics_channel` channels redloop publishes on, and the shapes of their messages
 * (docs/tracing.md). The channel objects live here, in the lowest layer, so that whichever layer
 * sees an event first (a connection's write, a cluster's MOVED) can publish it without importing
 * the layers above; what a command's message holds is built in core/tracing.ts.
 *
 * Every publish sits behind `hasSubscribers` (a getter Node answers from the channel's
 * prototype): with nobody listening a path pays that one check and builds nothing.
 */
import diagnostics from 'node:diagnostics_channel';

/** The channel names, for `diagnostics_channel.subscribe(name, fn)` / `tracingChannel(name)`. */
export const CHANNELS = Object.freeze({
  /** tracingChannel: one command, from sent to settled. */
  command: 'redloop:command',
  /** tracingChannel: one connection attempt, handshake included. */
  connect: 'redloop:connect',
  /** One socket write: how many commands it carried and its bytes. */
  write: 'redloop:write',
  /** A MOVED / ASK / TRYAGAIN / CLUSTERDOWN a routed command followed. */
  redirect: 'redloop:redirect',
  /** A new slot map, or a new master after a failover. */
  topology: 'redloop:topology',
  /** A connection lost, and the next attempt scheduled. */
  reconnect: 'redloop:reconnect',
  /** The client-side cache: hit, miss, invalidation. */
  cache: 'redloop:cache',
} as const);

/** What sendCommand was given: a Connection, or a target that routes to one. */
export type TargetKind = 'connection' | 'cluster' | 'shards' | 'sentinel' | 'other';

/**
 * A target that is none of the built-in ones (a sentinel-watched master) names its kind under
 * this symbol, so command messages say what the caller sent to.
 */
export const TARGET_KIND: unique symbol = Symbol('redloop.targetKind');

/**
 * The context object of `redloop:command` (the same object through start, end, error, asyncStart
 * and asyncEnd, so a subscriber may keep its span on it). Never holds a password: see
 * docs/tracing.md for what `traceArgs` keeps.
 */
export interface CommandMessage {
  /** The command name, upper case ('SET', 'CLIENT'). */
  readonly command: string;
  /**
   * The arguments after the name, as the loop's `traceArgs` says: 'redacted' (the default) keeps
   * the key and replaces values with '?'; 'full' keeps them but secrets; 'none' gives [].
   */
  readonly args: readonly string[];
  /** What the command was sent to. */
  readonly target: TargetKind;
  /**
   * Host (or unix socket path) of the server: for a Connection from the start, for a routed
   * target once written, and after a redirection the server that gave the final answer.
   */
  serverAddress: string | undefined;
  /** Its port (undefined for a unix socket). */
  serverPort: number | undefined;
  /** The database index. */
  db: number | undefined;
  /** True once the command was handed to a socket: it may have run even if it failed. */
  written: boolean;
  /** MOVED / ASK / TRYAGAIN / CLUSTERDOWN followed before the final answer. */
  redirections: number;
  /** The failure, set before `error` is published. */
  error?: Error;
}

/** The context object of `redloop:connect`: one attempt, from the socket opening to ready (or failed). */
export interface ConnectMessage {
  /** Connection.id of the connection making the attempt. */
  readonly connectionId: number;
  /** "host:port/db" or the socket path, as Connection.address. */
  readonly address: string;
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly db: number;
  readonly tls: boolean;
  /** 1 for the first attempt of this connection, then counting up across reconnects. */
  readonly attempt: number;
  /** Why the attempt failed, set before `error` is published. */
  error?: Error;
}

/** A message of `redloop:write`: one socket write. */
export interface WriteMessage {
  readonly connectionId: number;
  readonly address: string;
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  /** Commands in this write: the pipeline depth. */
  readonly commands: number;
  /** Bytes in this write. */
  readonly bytes: number;
}

/** A message of `redloop:redirect`. */
export interface RedirectMessage {
  readonly kind: 'MOVED' | 'ASK' | 'TRYAGAIN' | 'CLUSTERDOWN';
  /** The command name as sent. */
  readonly command: string;
  readonly slot: number;
  /** The node that owned the slot in the client's map ("host:port"), when known. */
  readonly from: string | undefined;
  /** Where the command goes next ("host:port"); undefined for TRYAGAIN / CLUSTERDOWN (retried later). */
  readonly to: string | undefined;
  /** Redirections this command has followed so far, this one included. */
  readonly redirections: number;
  /** The command's `redloop:command` context, when that channel has subscribers. */
  readonly context: CommandMessage | undefined;
}

/** One master of a topology message, with its slot ranges and replicas ("host:port"). */
export interface TopologyShardMessage {
  readonly master: string;
  readonly slots: ReadonlyArray<readonly [number, number]>;
  readonly replicas: readonly string[];
}

/** A message of `redloop:topology`. */
export interface TopologyMessage {
  readonly target: TargetKind;
  /**
   * 'slots': a cluster's new slot map. A sentinel target's: 'discovery' (its first master),
   * 'failover' (a new master: `from` the old one), 'replicas' (same master, other replicas).
   */
  readonly change: 'slots' | 'discovery' | 'failover' | 'replicas';
  /** The layout after the change. */
  readonly shards: readonly TopologyShardMessage[];
  /** For a sentinel target: the master before a failover (undefined otherwise) and the master now ("host:port"). */
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

/** A message of `redloop:reconnect`: a connection was lost and tries again after `delay`. */
export interface ReconnectMessage {
  readonly connectionId: number;
  readonly address: string;
  /** The attempt about to be made (1 for the first reconnect). */
  readonly attempt: number;
  /** ms until it is made. */
  readonly delay: number;
  /** Why the connection was lost. */
  readonly error: Error;
}

/** A message of `redloop:cache` (published by the client-side cache). */
export interface CacheMessage {
  readonly event: 'hit' | 'miss' | 'invalidation';
  /** The node's connection address, as Connection.address. */
  readonly address: string;
  /** The command (hit, miss) or undefined (invalidation). */
  readonly command: string | undefined;
  /** The key read (hit, miss) or invalidated; undefined for a flush of every key. */
  readonly key: string | Buffer | undefined;
}

export const commandChannel = diagnostics.tracingChannel<string, CommandMessage>(CHANNELS.command);
export const connectChannel = diagnostics.tracingChannel<string, ConnectMessage>(CHANNELS.connect);
export const writeChannel = diagnostics.channel(CHANNELS.write);
export const redirectChannel = diagnostics.channel(CHANNELS.redirect);
export const topologyChannel = diagnostics.channel(CHANNELS.topology);
export const reconnectChannel = diagnostics.channel(CHANNELS.reconnect);
export const cacheChannel = diagnostics.channel(CHANNELS.cache);

/**
 * What a connection's write marks on a traced command (see ReplySink.trace): that it was written,
 * and to which server. Only ever read while `redloop:command` has subscribers.
 */
export function markWritten(trace: CommandMessage, serverAddress: string, serverPort: number | undefined, db: number): void {
  trace.written = true;
  trace.serverAddress = serverAddress;
  trace.serverPort = serverPort;
  trace.db = db;
}
