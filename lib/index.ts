// The public surface of redloop.
export { EventLoop } from './core/eventloop.js';
export type { CommandOptions, EventLoopEvents, EventLoopOptions, ReconnectingInfo } from './core/eventloop.js';
export { Connection } from './connection/connection.js';
export type { ConnectionState, ConnectionStats } from './connection/connection.js';
export { Future } from './core/future.js';
export { CHANNELS } from './base/channels.js';
export type {
  CacheMessage, CommandMessage, ConnectMessage, ReconnectMessage, RedirectMessage, TargetKind, TopologyMessage,
  TopologyShardMessage, WriteMessage,
} from './base/channels.js';
export type { TraceArgs } from './core/tracing.js';
export type { ReplySink } from './core/future.js';
export type { Settled } from './features/batch.js';
export type { CommandTarget } from './connection/target.js';
export type { ConnectionOptions, ReconnectOptions } from './base/options.js';
export type { CacheOptions, CacheStats, CacheControl, ResolvedCacheOptions } from './base/cache-options.js';
export { parseRedisUrl, Secret } from './base/options.js';
export type { Arg, Encoded } from './protocol/encoder.js';
export {
  RedloopError, ReplyError, ConnectionClosedError, TimeoutError, ProtocolError, AuthError,
  ClientStateError, ConfigError, RoutingError, ExecAbortError, TransactionRetryError, NestedTransactionError,
} from './base/errors.js';
export { Cluster } from './routing/cluster/cluster.js';
export type { ClusterOptions, ClusterNodeInfo, ClusterStats, ReadFrom } from './routing/cluster/cluster.js';
export type { NodeAddress } from './routing/cluster/topology.js';
export { ShardSet, shardSlotRanges } from './routing/shards.js';
export { Sentinel } from './routing/sentinel/sentinel.js';
export type { SentinelConfig, SentinelOptions, SentinelReadFrom, SentinelReplicaInfo, SentinelStats } from './routing/sentinel/sentinel.js';
export { keySlot } from './routing/slot.js';
export { MassInsertError } from './features/massinsert/massinsert.js';
export type {
  MassInsertCommand, MassInsertFailure, MassInsertOptions, MassInsertProgress, MassInsertReport, MassInsertSource,
} from './features/massinsert/massinsert.js';
export { MalformedInputError, RespRequestFramer } from './protocol/requestframer.js';
export type { FramedBatch } from './protocol/requestframer.js';
export { ScanIterator } from './features/scan/scan.js';
export type { KeyScanOptions, ScanOptions } from './features/scan/scan.js';
export { Subscription } from './features/pubsub/pubsub.js';
export type { Channel, PubSubMessage, SubscribeOptions } from './features/pubsub/pubsub.js';
export type { BlockCommand, MultiOptions } from './features/multi.js';
export { Script } from './features/scripts.js';
export type { ScriptRunOptions } from './features/scripts.js';
export { Transaction } from './features/transactions/transaction.js';
export type { LendOptions } from './features/transactions/pool.js';
export type { TransactionOptions } from './features/transactions/transaction.js';
// What `resp3: true` gives for a verbatim string and for a value sent with an attribute.
export { AttributedReply, VerbatimString } from './protocol/decoder.js';
// Types that the public classes' constructors and members use.
export type { ResolvedOptions, ResolvedReconnect } from './base/options.js';
export type { CheckedArgs, NotAnArg } from './core/args.js';
