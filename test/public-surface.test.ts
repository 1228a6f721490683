// The public surface, pinned: what lib/index.ts exports, and what a Connection lets a user call.
// A change here is a change of the user API: make it on purpose (and say so in docs/api.md).
// Layer plumbing (reply handlers, flush, push mode...) is reached through the symbols of
// lib/base/internal.ts or inner objects, never through a name a user could type.
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript';
import * as redloop from '../lib/index.js';
import { EventLoop } from '../lib/index.js';
import * as internal from '../lib/base/internal.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INDEX = path.join(ROOT, 'dist/lib/index.d.ts');

const VALUES = [
  'AttributedReply', 'AuthError', 'CHANNELS', 'ClientStateError', 'Cluster', 'ConfigError', 'Connection', 'ConnectionClosedError', 'EventLoop',
  'ExecAbortError', 'Future', 'MalformedInputError', 'MassInsertError', 'NestedTransactionError', 'ProtocolError', 'RedloopError', 'ReplyError',
  'RespRequestFramer', 'RoutingError', 'ScanIterator', 'Script', 'Secret', 'Sentinel', 'ShardSet', 'Subscription', 'TimeoutError',
  'Transaction', 'TransactionRetryError', 'VerbatimString', 'keySlot', 'parseRedisUrl', 'shardSlotRanges',
];

const TYPES = [
  'CacheOptions', 'CacheStats', 'CacheControl', 'ResolvedCacheOptions', 'Arg', 'BlockCommand', 'CacheMessage', 'Channel', 'CheckedArgs', 'ClusterNodeInfo', 'ClusterOptions', 'ClusterStats', 'CommandMessage', 'CommandOptions',
  'CommandTarget', 'ConnectMessage', 'ConnectionOptions', 'ConnectionState', 'ConnectionStats', 'Encoded', 'EventLoopEvents', 'EventLoopOptions', 'FramedBatch',
  'KeyScanOptions', 'LendOptions', 'MassInsertCommand', 'MassInsertFailure', 'MassInsertOptions', 'MassInsertProgress',
  'MassInsertReport', 'MassInsertSource', 'MultiOptions', 'NodeAddress', 'NotAnArg', 'PubSubMessage', 'ReadFrom',
  'ReconnectMessage', 'ReconnectOptions', 'ReconnectingInfo', 'RedirectMessage', 'ReplySink', 'ResolvedOptions', 'ResolvedReconnect', 'ScanOptions',
  'ScriptRunOptions', 'SentinelConfig', 'SentinelOptions', 'SentinelReadFrom', 'SentinelReplicaInfo', 'SentinelStats',
  'Settled', 'SubscribeOptions', 'TargetKind', 'TopologyMessage', 'TopologyShardMessage', 'TraceArgs', 'TransactionOptions', 'WriteMessage',
];

/** What a user may call or read on a Connection (public members of its declaration). */
const CONNECTION_MEMBERS = [
  'address', 'bufferedBytes', 'cache', 'close', 'commandTimeout', 'defaultReturnBuffers', 'disconnect', 'id', 'loop',
  'pendingReplies', 'protocol', 'resolvedOptions', 'state', 'stats', 'submit', 'toJSON', 'waitForRoom', 'whenClosed',
  '[inspect.custom]',
];

/** Plumbing that was once public, and must not come back under a name a user can type. */
const PLUMBING = [
  'onReply', 'onErrorReply', 'onReplyHead', 'nestedError', 'onProtocolError', 'onPushMessage', 'flush',
  'submitUnanswered', 'setPushHandler', 'setReading', 'writeNow', 'commandTimedOut', 'scheduleFlush', 'pushHandler',
];

/** Routing and pub/sub plumbing that was once public (now symbols of lib/base/internal.ts, or inner objects). */
const ROUTING_PLUMBING = ['onFailure', 'keyOf', 'blockSlot', 'submitBlock', 'submitToSlot', 'deliver', 'channelMoved', 'refused', 'channelOf', 'changed'];

describe('public surface', function () {
  let ts: typeof import('typescript');
  let program: TS.Program;
  let checker: TS.TypeChecker;
  let exported: TS.Symbol[];

  before(async () => {
    ts = (await import('typescript')).default;
    program = ts.createProgram([INDEX], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true });
    checker = program.getTypeChecker();
    exported = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!);
  });
  after(() => {
    // The program is big: later suites (memory tests among them) should not carry it.
    program = checker = undefined!;
    exported = [];
  });

  it('lib/index.ts exports the user API, and only it', () => {
    expect(Object.keys(redloop).sort()).to.deep.equal([...VALUES].sort());
    const typeOnly = exported.map((s) => s.name).filter((n) => !(n in redloop));
    expect(typeOnly.sort()).to.deep.equal([...TYPES].sort());
    for (const gone of ['ReplyHandler', 'ConnectionOwner', 'UnobservedErrorSink', 'SlotRouter', 'CommandBlock', 'encodeCommand', 'PushHandler']) {
      expect(exported.map((s) => s.name), gone).not.to.include(gone);
    }
  });

  it('docs/api.md names every export of lib/index.ts', () => {
    const api = fs.readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8');
    const missing = [...VALUES, ...TYPES].filter((name) => !new RegExp(`\\b${name}\\b`).test(api));
    expect(missing, 'exports docs/api.md does not mention').to.deep.equal([]);
  });

  it('a Connection declares only its user API as public; its plumbing is keyed by internal symbols', () => {
    const sym = exported.find((s) => s.name === 'Connection')!;
    const decl = checker.getAliasedSymbol(sym).declarations!.find(ts.isClassDeclaration)!;
    const names: string[] = [];
    const internalKeys: string[] = [];
    for (const member of decl.members) {
      if (ts.isConstructorDeclaration(member)) continue; // @internal: loop.connect() opens connections
      if (ts.getCombinedModifierFlags(member) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
      const name = member.name!;
      if (ts.isComputedPropertyName(name) && /^k[A-Z]/.test(name.expression.getText())) internalKeys.push(name.expression.getText());
      else names.push(name.getText());
    }
    expect([...new Set(names)].sort()).to.deep.equal([...CONNECTION_MEMBERS].sort());
    for (const key of internalKeys) expect(internal, key).to.have.property(key);
  });

  it('no plumbing is reachable on a Connection by a string key', async () => {
    const loop = new EventLoop({ reconnect: false });
    loop.on('error', () => {});
    const conn = loop.connect({ host: '127.0.0.1', port: 1 }); // nothing listens: only its shape matters here
    try {
      for (const name of PLUMBING) expect(name in conn, name).to.equal(false);
      // The symbols it has are redloop's internal ones (not exported by lib/index.ts) and inspect's.
      const internalSymbols = new Set<symbol>(Object.values(internal));
      for (const key of Object.getOwnPropertySymbols(Object.getPrototypeOf(conn))) {
        expect(internalSymbols.has(key) || key === Symbol.for('nodejs.util.inspect.custom'), String(key)).to.equal(true);
      }
      // No own property holds a function: no per-connection closures standing in for methods.
      for (const name of Object.getOwnPropertyNames(conn)) expect(typeof (conn as unknown as Record<string, unknown>)[name], name).not.to.equal('function');
    } finally {
      conn.disconnect();
      await loop.close();
    }
  });

  it('no routing or pub/sub plumbing is reachable on a cluster, a shard set or a subscription by a string key', () => {
    const internalSymbols = new Set<symbol>(Object.values(internal));
    for (const cls of [redloop.Cluster, redloop.ShardSet, redloop.Subscription]) {
      for (let proto = cls.prototype; proto !== Object.prototype && proto !== null; proto = Object.getPrototypeOf(proto)) {
        if (proto.constructor.name === 'EventEmitter') break; // Subscription's base: on(), emit()...
        for (const name of ROUTING_PLUMBING) expect(Object.getOwnPropertyNames(proto), `${cls.name}: ${name}`).not.to.include(name);
        for (const key of Object.getOwnPropertySymbols(proto)) {
          expect(internalSymbols.has(key) || key === Symbol.for('nodejs.util.inspect.custom') || key === Symbol.asyncIterator, `${cls.name}: ${String(key)}`).to.equal(true);
        }
      }
    }
  });
});
