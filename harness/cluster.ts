// A real Redis Cluster for tests: N masters with R replicas each, created by
// `redis-cli --cluster create` (valkey-server nodes and valkey-cli when REDLOOP_SERVER=valkey,
// see servers.ts), on free loopback ports, torn down by stop() (or by the mocha
// root hook, which stops every RedisServer still registered).
//
// Every topology operation (moveSlot, reshard, failover, killMaster, restartNode) resolves only
// once the cluster has converged: every live node answers cluster_state:ok, every live node's
// CLUSTER NODES and CLUSTER SHARDS agree, all 16384 slots are served by live masters and every
// live replica's link to its master is up. So a test can assert on the new layout right after the
// await. Waits are bounded and time out with a ClusterHarnessTimeoutError that says what was still
// missing.
//
// Everything here talks to the servers through the raw RESP client in resp.ts and redis-cli,
// never through lib/, so the harness does not depend on the client under test.
//
//   let cluster: RedisCluster;
//   before(async () => { cluster = await startCluster({ password: 'pw' }); });  // ~2-3 s, once per suite
//   after(() => cluster?.stop());
//
//   const c = loop.cluster([cluster.seedUrl], { password: 'pw' });
//   const owner = await cluster.masterOfKey('user:1');          // ClusterNode, via CLUSTER KEYSLOT
//   await owner.command('GET', 'user:1');                         // raw check, independent of lib/
//   await cluster.moveSlot(await cluster.keySlot('user:1'), other);       // -> MOVED
//   const m = await cluster.beginMigration(slot, other); await m.migrateSomeKeys(10); ... await m.finish(); // -> ASK
//   const resharding = cluster.reshard(1000, a, b); /* writers */ await resharding;
//   await cluster.failover(cluster.replicasOf(owner)[0]!);
//   const promoted = await cluster.killMaster(owner); ... await cluster.restartNode(owner);
//
// A test that changes the topology changes it for the rest of its suite: node roles move, so
// pick nodes through masters() / replicasOf() / masterOfKey() rather than by index at start.
import { execFile, type ChildProcess } from 'node:child_process';
import { findFreePort, startRedis, type RedisServer } from './redis.js';
import { rawCommands, RawReplyError, type RespArg } from './resp.js';
import { isMissingBinary, missingBinaryMessage, serverBinaries, type ServerBinaries } from './servers.js';

const CLI_PURPOSE = 'a cluster is created with `redis-cli --cluster create`';

/** What a missing redis-cli on PATH says (the default family); the chosen family's message comes from missingBinaryMessage(). */
export const CLUSTER_REDIS_CLI_MISSING = missingBinaryMessage('cli', serverBinaries({}), CLI_PURPOSE);

/** Slots in a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

export interface StartClusterOptions {
  /** Number of masters (default 3; Redis needs at least 3 for `--cluster create`). */
  masters?: number;
  /** Replicas per master (default 1). */
  replicasPerMaster?: number;
  /** requirepass and masterauth on every node; the harness authenticates its own helpers. */
  password?: string;
  /** cluster-node-timeout in ms (default 1000): failure detection and promotion take a few of these. */
  nodeTimeoutMs?: number;
  /** Extra server arguments for every node, e.g. ['--cluster-require-full-coverage', 'no']. */
  extraArgs?: string[];
  /** The server and cli to run (default: serverBinaries(), i.e. what REDLOOP_SERVER chooses). */
  binaries?: ServerBinaries;
  /** Default bound of every wait for convergence (default 30 s; the machine may be busy). */
  convergeTimeoutMs?: number;
}

export type ClusterRole = 'master' | 'replica';

/** An inclusive slot range [start, end]. */
export type SlotRange = [start: number, end: number];

/** Thrown when the cluster does not reach the awaited state in time; the message says what was missing. */
export class ClusterHarnessTimeoutError extends Error {
  override name = 'ClusterHarnessTimeoutError';
}

/**
 * One node of the cluster: its redis-server process plus what the cluster says about it.
 * `role`, `masterId` and `slots` are the cluster's agreed view as of the harness's last
 * convergence check (every topology operation and waitForConvergence() refresh them).
 */
export class ClusterNode {
  role: ClusterRole = 'master';
  /** For a replica: the id of its master. */
  masterId: string | undefined;
  /** For a master: the slot ranges it serves. */
  slots: SlotRange[] = [];

  /** @internal built by startCluster() */
  constructor(
    /** The process (kill, restart, log...). Prefer the cluster's restartNode() to server.restart(). */
    readonly server: RedisServer,
    /** The cluster node id (40 hex characters). */
    readonly id: string,
    /** The cluster bus port (set with --cluster-port, so it need not be port+10000). */
    readonly busPort: number,
  ) {}

  get host(): string { return this.server.host; }
  get port(): number { return this.server.port; }
  /** "127.0.0.1:PORT", as the cluster announces the node. */
  get address(): string { return `${this.host}:${this.port}`; }
  /** redis://127.0.0.1:PORT (no database: a cluster has only db 0). */
  get url(): string { return `redis://${this.host}:${this.port}`; }
  get isRunning(): boolean { return this.server.isRunning; }
  get isMaster(): boolean { return this.role === 'master'; }
  get isReplica(): boolean { return this.role === 'replica'; }

  /** One command over a fresh raw connection (AUTH included); an error reply rejects. */
  command(...args: RespArg[]): Promise<unknown> {
    return this.server.command(...args);
  }

  /** Several commands in one write; error replies come back as RawReplyError values. */
  commands(commands: readonly (readonly RespArg[])[]): Promise<unknown[]> {
    return this.server.commands(commands);
  }

  toString(): string {
    return `${this.role} ${this.address} (${this.id.slice(0, 8)})`;
  }
}

/** What every live node agrees the cluster looks like. */
export interface ClusterShard {
  master: ClusterNode;
  replicas: ClusterNode[];
  slots: SlotRange[];
}

/**
 * A slot left half-migrated by beginMigration(): IMPORTING on `target`, MIGRATING on `source`.
 * Keys move only when asked, so a test can hold keys on both sides and exercise ASK.
 */
export interface SlotMigration {
  readonly slot: number;
  readonly source: ClusterNode;
  readonly target: ClusterNode;
  /** MIGRATE up to n of the keys still on the source; resolves with how many moved. */
  migrateSomeKeys(n: number): Promise<number>;
  /** The keys of the slot still on the source (CLUSTER GETKEYSINSLOT), as Buffers. */
  keysOnSource(): Promise<Buffer[]>;
  /** Move the remaining keys, assign the slot to the target everywhere, wait for convergence. */
  finish(): Promise<void>;
}

interface WaitOptions {
  /** Bound of this wait (default: the cluster's convergeTimeoutMs). */
  timeoutMs?: number;
}

/** Start a Redis Cluster and wait until it has converged. See StartClusterOptions for defaults. */
export async function startCluster(opts: StartClusterOptions = {}): Promise<RedisCluster> {
  return RedisCluster.start(opts);
}

/** A running Redis Cluster; built by startCluster(). */
export class RedisCluster {
  /** Every node, masters and replicas, in start order (killed ones included; see isRunning). */
  readonly nodes: readonly ClusterNode[];
  readonly password: string | undefined;
  readonly nodeTimeoutMs: number;
  readonly convergeTimeoutMs: number;
  /** The server and cli every node and every redis-cli run use. */
  readonly binaries: ServerBinaries;
  /** Slots left open on purpose by beginMigration(); convergence ignores them. */
  private readonly openSlots = new Set<number>();
  private readonly children = new Set<ChildProcess>();

  private constructor(nodes: ClusterNode[], opts: StartClusterOptions) {
    this.nodes = nodes;
    this.password = opts.password;
    this.nodeTimeoutMs = opts.nodeTimeoutMs ?? 1000;
    this.convergeTimeoutMs = opts.convergeTimeoutMs ?? 30_000;
    this.binaries = opts.binaries ?? serverBinaries();
  }

  /** @internal use startCluster() */
  static async start(opts: StartClusterOptions): Promise<RedisCluster> {
    const masters = opts.masters ?? 3;
    const replicas = opts.replicasPerMaster ?? 1;
    if (masters < 3) throw new Error(`startCluster: redis-cli --cluster create needs at least 3 masters (got ${masters})`);
    const binaries = opts.binaries ?? serverBinaries();
    opts = { ...opts, binaries };
    await runCli(binaries, ['--version'], 10_000); // fail early, with the install hint, when redis-cli is missing
    const args = [
      '--cluster-enabled', 'yes',
      // Relative to --dir, i.e. inside the server's temp dir; it survives kill() so a restarted node rejoins.
      '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000),
      // Full syncs start at once instead of after 5 s, and replica offsets move every second
      // (CLUSTER SHARDS calls a replica at offset 0 "loading").
      '--repl-diskless-sync-delay', '0',
      '--repl-ping-replica-period', '1',
      ...(opts.password !== undefined ? ['--requirepass', opts.password, '--masterauth', opts.password] : []),
      ...(opts.extraArgs ?? []),
    ];
    const settled = await Promise.allSettled(
      Array.from({ length: masters * (1 + replicas) }, () => startClusterNodeProcess(args, binaries)),
    );
    const nodes = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const cluster = new RedisCluster(nodes, opts);
    try {
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      await cluster.cli([
        '--cluster', 'create', ...nodes.map((n) => n.address),
        '--cluster-replicas', String(replicas), '--cluster-yes',
      ], 60_000);
      await cluster.waitForConvergence();
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** redis://127.0.0.1:PORT of a running node (the first one), to seed a cluster client with. */
  get seedUrl(): string {
    return this.anyRunning().url;
  }

  /** Running nodes that are masters (as of the last convergence check), in start order. */
  masters(): ClusterNode[] {
    return this.nodes.filter((n) => n.isRunning && n.role === 'master');
  }

  /** Running nodes that are replicas (as of the last convergence check), in start order. */
  replicas(): ClusterNode[] {
    return this.nodes.filter((n) => n.isRunning && n.role === 'replica');
  }

  /** Running replicas of a master. */
  replicasOf(master: ClusterNode): ClusterNode[] {
    return this.replicas().filter((n) => n.masterId === master.id);
  }

  /** The node with this id (throws if it is not one of ours). */
  nodeById(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node with id ${id} in this cluster`);
    return node;
  }

  /** The slot of a key, as the server computes it (CLUSTER KEYSLOT). */
  async keySlot(key: string | Buffer): Promise<number> {
    return Number(await this.anyRunning().command('CLUSTER', 'KEYSLOT', key));
  }

  /** The master serving a slot right now, from a live node's CLUSTER SHARDS. */
  async nodeForSlot(slot: number): Promise<ClusterNode> {
    const owner = (await this.readSlotOwners(this.anyRunning())).find(([s, e]) => slot >= s && slot <= e);
    if (!owner) throw new Error(`slot ${slot} is served by no node`);
    return this.nodeById(owner[2]);
  }

  /** The master serving a key right now (CLUSTER KEYSLOT, then the current slot map). */
  async masterOfKey(key: string | Buffer): Promise<ClusterNode> {
    return this.nodeForSlot(await this.keySlot(key));
  }

  /** The agreed layout (masters with their replicas and slots), after waiting for convergence. */
  async shards(opts: WaitOptions = {}): Promise<ClusterShard[]> {
    await this.waitForConvergence(opts);
    return this.masters()
      .filter((m) => m.slots.length > 0)
      .map((master) => ({ master, replicas: this.replicasOf(master), slots: master.slots }));
  }

  /**
   * Wait until every live node says cluster_state:ok, all their CLUSTER NODES and CLUSTER SHARDS
   * views agree, every slot is served by a live master, killed nodes are flagged fail, and every
   * live replica's master link is up. Refreshes each node's role, masterId and slots.
   */
  async waitForConvergence(opts: WaitOptions = {}): Promise<void> {
    await this.waitUntil('the cluster to converge', opts.timeoutMs, async () => this.checkConverged());
  }

  /**
   * Move a slot, with its keys, to `to` by hand (SETSLOT IMPORTING/MIGRATING, GETKEYSINSLOT +
   * MIGRATE in batches, SETSLOT NODE on target, source and every master), then wait for
   * convergence. A no-op when `to` already serves the slot.
   */
  async moveSlot(slot: number, to: ClusterNode, opts: { batch?: number } = {}): Promise<void> {
    const source = await this.nodeForSlot(slot);
    if (source === to) return;
    const migration = await this.beginMigration(slot, to);
    while ((await migration.migrateSomeKeys(opts.batch ?? 100)) > 0);
    await migration.finish();
  }

  /**
   * Open a slot migration to `to` and stop there: the target says IMPORTING, the source says
   * MIGRATING, every key is still on the source. Move keys with migrateSomeKeys(n), end with
   * finish(). Until then waitForConvergence() ignores this slot's open state.
   */
  async beginMigration(slot: number, to: ClusterNode): Promise<SlotMigration> {
    await this.waitForConvergence();
    const source = await this.nodeForSlot(slot);
    if (source === to) throw new Error(`beginMigration: ${to} already serves slot ${slot}`);
    if (to.role !== 'master') throw new Error(`beginMigration: the target must be a master, ${to} is not`);
    if (this.openSlots.has(slot)) throw new Error(`beginMigration: slot ${slot} is already migrating`);
    this.openSlots.add(slot);
    await to.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await source.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    const keysOnSource = async (count = 1_000_000_000): Promise<Buffer[]> =>
      (await rawCommand(source, true, 'CLUSTER', 'GETKEYSINSLOT', slot, count)) as Buffer[];
    const migrateSomeKeys = async (n: number): Promise<number> => {
      const keys = await keysOnSource(n);
      if (keys.length === 0) return 0;
      const auth = this.password !== undefined ? ['AUTH', this.password] : [];
      const reply = await source.command('MIGRATE', to.host, to.port, '', 0, 10_000, ...auth, 'KEYS', ...keys);
      if (reply !== 'OK' && reply !== 'NOKEY') throw new Error(`MIGRATE of slot ${slot} answered ${String(reply)}`);
      return keys.length;
    };
    let finished: Promise<void> | undefined;
    const finish = () => (finished ??= (async () => {
      while ((await migrateSomeKeys(100)) > 0);
      // Target first (it bumps its epoch, so its claim wins), then the source, then the rest.
      await to.command('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      await source.command('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      const others = this.masters().filter((m) => m !== to && m !== source);
      await Promise.all(others.map((m) => m.command('CLUSTER', 'SETSLOT', slot, 'NODE', to.id)));
      this.openSlots.delete(slot);
      await this.waitForConvergence();
    })());
    return { slot, source, target: to, migrateSomeKeys, keysOnSource: () => keysOnSource(), finish };
  }

  /**
   * Move `count` slots from `from` (or from every other master: 'all') to `to` with
   * `redis-cli --cluster reshard`, then wait for convergence. Runs asynchronously: start it,
   * run writers, await it. Bounded by timeoutMs (default 180 s; redis-cli is killed then).
   */
  async reshard(count: number, from: ClusterNode | 'all', to: ClusterNode, opts: { timeoutMs?: number; pipeline?: number } = {}): Promise<void> {
    // redis-cli refuses to reshard a cluster whose nodes disagree or that has open slots.
    await this.waitForConvergence();
    await this.cli([
      '--cluster', 'reshard', this.anyRunning().address,
      '--cluster-from', from === 'all' ? 'all' : from.id,
      '--cluster-to', to.id,
      '--cluster-slots', String(count),
      '--cluster-pipeline', String(opts.pipeline ?? 100),
      '--cluster-yes',
    ], opts.timeoutMs ?? 180_000);
    await this.waitForConvergence();
  }

  /**
   * CLUSTER FAILOVER on a replica (mode FORCE or TAKEOVER if given), then wait until it is a
   * master in every node's view and the cluster has converged (its old master is its replica).
   */
  async failover(replica: ClusterNode, opts: { mode?: 'FORCE' | 'TAKEOVER'; timeoutMs?: number } = {}): Promise<void> {
    await this.waitForConvergence();
    if (replica.role !== 'replica') throw new Error(`failover: ${replica} is not a replica`);
    const deadline = Date.now() + (opts.timeoutMs ?? this.convergeTimeoutMs);
    // A manual failover the master does not answer in time is abandoned by the replica
    // (after ~5 s); ask again then, until the deadline.
    for (;;) {
      // Only while it still calls itself a replica: a promotion that merely has not converged
      // yet must not be answered with "send CLUSTER FAILOVER to a replica".
      const [role] = (await replica.command('ROLE')) as unknown[];
      if (role === 'slave') await replica.command('CLUSTER', 'FAILOVER', ...(opts.mode ? [opts.mode] : []));
      const attemptMs = Math.min(8000, deadline - Date.now());
      try {
        await this.waitUntil(`${replica.address} to be promoted by CLUSTER FAILOVER`, attemptMs, async () => {
          const reason = await this.checkConverged();
          if (reason !== true) return reason;
          return replica.role === 'master' ? true : `${replica.address} is still a replica`;
        });
        return;
      } catch (err) {
        if (!(err instanceof ClusterHarnessTimeoutError) || Date.now() + 1000 >= deadline) throw err;
      }
    }
  }

  /**
   * SIGKILL a master, then wait until one of its replicas has been promoted, every live node
   * agrees, and the killed node is flagged fail. Resolves with the promoted node.
   */
  async killMaster(master: ClusterNode, opts: WaitOptions = {}): Promise<ClusterNode> {
    await this.waitForConvergence();
    if (master.role !== 'master' || !master.isRunning) throw new Error(`killMaster: ${master} is not a running master`);
    const candidates = this.replicasOf(master);
    if (candidates.length === 0) throw new Error(`killMaster: ${master} has no replica to promote`);
    const slots = master.slots.map((r) => r.join('-')).join(',');
    master.server.kill('SIGKILL');
    await master.server.waitExit();
    let promoted: ClusterNode | undefined;
    await this.waitUntil(`a replica of ${master.address} to be promoted`, opts.timeoutMs, async () => {
      const reason = await this.checkConverged();
      if (reason !== true) return reason;
      promoted = candidates.find((c) => c.role === 'master' && c.slots.map((r) => r.join('-')).join(',') === slots);
      return promoted ? true : 'no replica of the killed master serves its slots';
    });
    return promoted!;
  }

  /**
   * Start a killed (or stopped-by-signal) node again on its port with its nodes.conf, and wait
   * until it has rejoined: a former master comes back as a replica of whoever took its slots.
   */
  async restartNode(node: ClusterNode, opts: WaitOptions = {}): Promise<void> {
    await node.server.restart();
    await this.waitForConvergence(opts);
  }

  /** Stop every node and remove their temp dirs; kills a redis-cli still running. */
  async stop(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.server.stop()));
  }

  /** Run redis-cli (authenticated when the cluster has a password) and return its stdout. */
  async cli(args: string[], timeoutMs = 60_000): Promise<string> {
    const auth = this.password !== undefined ? ['-a', this.password, '--no-auth-warning'] : [];
    const child = runCli(this.binaries, [...auth, ...args], timeoutMs);
    this.children.add(child.child);
    try {
      return await child;
    } finally {
      this.children.delete(child.child);
    }
  }

  private anyRunning(): ClusterNode {
    const node = this.nodes.find((n) => n.isRunning);
    if (!node) throw new Error('no node of the cluster is running');
    return node;
  }

  /** [start, end, masterId] for every slot range in one node's CLUSTER SHARDS. */
  private async readSlotOwners(node: ClusterNode): Promise<Array<[number, number, string]>> {
    return parseShards(await node.command('CLUSTER', 'SHARDS'));
  }

  private async waitUntil(what: string, timeoutMs: number | undefined, check: () => Promise<true | string>): Promise<void> {
    const limit = timeoutMs ?? this.convergeTimeoutMs;
    const deadline = Date.now() + limit;
    let last = 'not checked yet';
    for (;;) {
      try {
        const result = await check();
        if (result === true) return;
        last = result;
      } catch (err) {
        last = `check failed: ${(err as Error).message}`;
      }
      if (Date.now() >= deadline) {
        throw new ClusterHarnessTimeoutError(`timed out after ${limit} ms waiting for ${what}; last seen: ${last}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** true when converged (and node roles refreshed), else what is still missing. */
  private async checkConverged(): Promise<true | string> {
    const live = this.nodes.filter((n) => n.isRunning);
    const dead = this.nodes.filter((n) => !n.isRunning);
    const replies = await Promise.all(live.map(async (n) => ({
      node: n,
      replies: await n.commands([['CLUSTER', 'INFO'], ['CLUSTER', 'NODES'], ['CLUSTER', 'SHARDS'], ['INFO', 'replication']]),
    })));
    let reference: string | undefined;
    let referenceShards: string | undefined;
    let view: NodeLine[] = [];
    for (const { node, replies: [info, nodesText, shards, replication] } of replies) {
      for (const r of [info, nodesText, shards, replication]) {
        if (r instanceof RawReplyError) return `${node.address} answered ${r.message}`;
      }
      const state = /cluster_state:(\w+)/.exec(String(info))?.[1];
      if (state !== 'ok') return `${node.address} says cluster_state:${state}`;
      const lines = parseNodes(String(nodesText));
      const open = lines.find((l) => l.myself)?.openSlots.filter((s) => !this.openSlots.has(s)) ?? [];
      if (open.length > 0) return `${node.address} has open (migrating/importing) slots ${open.join(',')}`;
      const normalized = lines.map(normalizeLine).sort().join('\n');
      if (reference === undefined) {
        reference = normalized;
        view = lines;
      } else if (normalized !== reference) {
        return `${node.address} disagrees about the nodes:\n${normalized}\nvs\n${reference}`;
      }
      const owners = parseShards(shards).map((o) => o.join(' ')).sort().join(',');
      if (referenceShards === undefined) referenceShards = owners;
      else if (owners !== referenceShards) return `${node.address} disagrees in CLUSTER SHARDS`;
      const me = lines.find((l) => l.myself)!;
      if (me.role === 'replica' && !/master_link_status:up/.test(String(replication))) {
        return `replica ${node.address} has no link to its master yet`;
      }
    }
    if (reference === undefined) return 'no node is running';
    const byId = new Map(view.map((l) => [l.id, l]));
    for (const l of view) {
      if (l.state === 'handshake') return `a node is still in handshake (${l.address})`;
      if (!this.nodes.some((n) => n.id === l.id)) return `the cluster knows a node the harness did not start: ${l.id}`;
    }
    for (const n of live) {
      const l = byId.get(n.id);
      if (!l) return `${n.address} is not known to the cluster`;
      if (l.state !== 'ok') return `${n.address} is flagged ${l.state}`;
    }
    for (const n of dead) {
      const l = byId.get(n.id);
      if (l && l.state !== 'fail') return `killed node ${n.address} is not flagged fail yet (${l.state})`;
    }
    let covered = 0;
    for (const l of view) {
      if (l.role !== 'master' || l.slots.length === 0) continue;
      if (l.state !== 'ok') return `failed master ${l.address} still serves slots`;
      for (const [s, e] of l.slots) covered += e - s + 1;
    }
    if (covered !== CLUSTER_SLOTS) return `${covered} of ${CLUSTER_SLOTS} slots are served`;
    const nodesOwners = view.flatMap((l) => (l.role === 'master' ? l.slots.map(([s, e]) => `${s} ${e} ${l.id}`) : []))
      .sort().join(',');
    if (nodesOwners !== referenceShards) return 'CLUSTER SHARDS and CLUSTER NODES disagree about the slots';
    for (const n of this.nodes) {
      const l = byId.get(n.id);
      if (!l) continue;
      n.role = l.role;
      n.masterId = l.masterId;
      n.slots = l.slots;
    }
    return true;
  }
}

interface NodeLine {
  id: string;
  address: string;
  myself: boolean;
  role: ClusterRole;
  masterId: string | undefined;
  state: 'ok' | 'pfail' | 'fail' | 'handshake';
  slots: SlotRange[];
  /** Only on the `myself` line: slots this node is migrating or importing. */
  openSlots: number[];
}

/** Parse CLUSTER NODES text. */
function parseNodes(text: string): NodeLine[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((line) => {
    const [id, addr, flagText, master, , , , , ...slotTokens] = line.trim().split(' ');
    const flags = flagText!.split(',');
    const slots: SlotRange[] = [];
    const openSlots: number[] = [];
    for (const t of slotTokens) {
      if (t.startsWith('[')) openSlots.push(Number(t.slice(1).split('-')[0]));
      else {
        const [s, e] = t.split('-');
        slots.push([Number(s), Number(e ?? s)]);
      }
    }
    return {
      id: id!,
      address: addr!.split('@')[0]!,
      myself: flags.includes('myself'),
      role: flags.includes('slave') ? 'replica' : 'master',
      masterId: master === '-' ? undefined : master,
      state: flags.includes('handshake') ? 'handshake' : flags.includes('fail') ? 'fail' : flags.includes('fail?') ? 'pfail' : 'ok',
      slots: slots.sort((a, b) => a[0] - b[0]),
      openSlots,
    };
  });
}

/** What every node must agree on (not ping times, link states or epochs). */
function normalizeLine(l: NodeLine): string {
  return [l.id, l.address, l.role, l.masterId ?? '-', l.state, l.slots.map((r) => r.join('-')).join(',')].join(' ');
}

/**
 * [start, end, masterId] for every slot range in a CLUSTER SHARDS reply (RESP2). A shard may list
 * two masters: Valkey 8 (which groups nodes by shard id) keeps a failed master in the shard of
 * the replica that took its place, still role master, with health fail; the one serving is the
 * other one. (Redis 7.0 lists the failed master in a shard of its own, with no slots.)
 */
function parseShards(reply: unknown): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  for (const shard of reply as unknown[][]) {
    const fields = toMap(shard);
    const slots = (fields.get('slots') as Array<number | string>).map(Number);
    const masters = (fields.get('nodes') as unknown[][]).map(toMap).filter((n) => n.get('role') === 'master');
    const master = masters.find((n) => n.get('health') !== 'fail') ?? masters[0];
    if (!master) continue;
    for (let i = 0; i + 1 < slots.length; i += 2) out.push([slots[i]!, slots[i + 1]!, String(master.get('id'))]);
  }
  return out;
}

function toMap(flat: unknown[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}

/** One command with bulk replies as Buffers (binary-safe keys), through the node's endpoint. */
async function rawCommand(node: ClusterNode, buffers: boolean, ...args: RespArg[]): Promise<unknown> {
  const [reply] = await rawCommands({ ...node.server.endpoint, returnBuffers: buffers }, [args]);
  if (reply instanceof Error) throw reply;
  return reply;
}

/**
 * Start one cluster-enabled redis-server on two free loopback ports: its client port and its
 * cluster bus port (--cluster-port). Choosing the bus port explicitly instead of relying on
 * port+10000 means any free port works (the default +10000 rule fails for ephemeral ports above
 * 55535 and may collide with another process). Retries when a port was taken in between.
 */
async function startClusterNodeProcess(args: string[], binaries: ServerBinaries): Promise<ClusterNode> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = await findFreePort();
    let busPort = await findFreePort();
    while (busPort === port) busPort = await findFreePort();
    try {
      const server = await startRedis({ port, binaries, args: ['--cluster-port', String(busPort), ...args] });
      const id = String(await server.command('CLUSTER', 'MYID'));
      return new ClusterNode(server, id, busPort);
    } catch (err) {
      lastError = err;
      const e = err as Error;
      if (e.name !== 'PortInUseError' && !/Address already in use/.test(e.message)) throw err;
    }
  }
  throw lastError;
}

type CliRun = Promise<string> & { child: ChildProcess };

/** Run redis-cli (or valkey-cli) with a bound; the error carries its output and says how to get the cli when it is missing. */
function runCli(binaries: ServerBinaries, args: string[], timeoutMs: number): CliRun {
  let child!: ChildProcess;
  const promise = new Promise<string>((resolve, reject) => {
    child = execFile(binaries.cli, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) { resolve(stdout); return; }
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      if (isMissingBinary(e)) { reject(new Error(missingBinaryMessage('cli', binaries, CLI_PURPOSE))); return; }
      const why = e.killed ? `was killed after ${timeoutMs} ms` : `failed (${String(e.code)})`;
      reject(new Error(`${binaries.cli} ${args.filter((a, i) => args[i - 1] !== '-a').join(' ')} ${why}:\n${tail(stdout)}\n${tail(stderr)}`));
    });
  }) as CliRun;
  promise.child = child;
  return promise;
}

function tail(text: string, max = 4000): string {
  // redis-cli colours its output; the escapes only clutter an error message.
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  return plain.length > max ? `...${plain.slice(-max)}` : plain;
}
