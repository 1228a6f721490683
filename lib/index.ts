// The public surface of redloop.
export { EventLoop } from './eventloop.js';
export type { CommandOptions, EventLoopEvents, ReconnectingInfo } from './eventloop.js';
export { Connection } from './connection.js';
export type { ConnectionState, ConnectionStats } from './connection.js';
export { Future } from './future.js';
export type { ReplySink } from './future.js';
export type { Settled } from './batch.js';
export type { CommandTarget } from './target.js';
export type { ConnectionOptions, ReconnectOptions } from './options.js';
export { parseRedisUrl, Secret } from './options.js';
export type { Arg, Encoded } from './protocol/encoder.js';
export { encodeCommand } from './protocol/encoder.js';
export {
  RedloopError, ReplyError, ConnectionClosedError, TimeoutError, ProtocolError, AuthError,
  ClientStateError, ConfigError, RoutingError, ExecAbortError, TransactionRetryError,
} from './errors.js';
export { Cluster } from './cluster/cluster.js';
export type { SlotRouter, CommandBlock } from './cluster/router.js';
export type { ClusterOptions, ClusterNodeInfo, ClusterStats, ReadFrom } from './cluster/cluster.js';
export type { NodeAddress } from './cluster/topology.js';
export { ShardSet, shardSlotRanges } from './shards.js';
export { keySlot } from './cluster/slot.js';
export { MassInsertError } from './massinsert.js';
export type {
  MassInsertCommand, MassInsertFailure, MassInsertOptions, MassInsertProgress, MassInsertReport, MassInsertSource,
} from './massinsert.js';
export { MalformedInputError, RespRequestFramer } from './protocol/requestframer.js';
export type { FramedBatch } from './protocol/requestframer.js';
export { ScanIterator } from './scan.js';
export type { KeyScanOptions, ScanOptions } from './scan.js';
export { Subscription } from './pubsub.js';
export type { Channel, PubSubMessage, SubscribeOptions } from './pubsub.js';
export type { BlockCommand, MultiOptions } from './multi.js';
export { Script } from './scripts.js';
export type { ScriptRunOptions } from './scripts.js';
export { Transaction } from './pool.js';
export type { LendOptions, TransactionOptions } from './pool.js';
// Types that the public classes' constructors and members use.
export type { ResolvedOptions, ResolvedReconnect } from './options.js';
export type { ConnectionOwner } from './connection.js';
export type { UnobservedErrorSink } from './future.js';
export type { ReplyHandler } from './protocol/decoder.js';
export type { CheckedArgs, NotAnArg } from './args.js';
