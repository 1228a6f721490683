// A real Sentinel deployment for tests, benchmarks and examples: 1 master, N replicas (default
// 2) and M sentinels (default 3, quorum 2), every process a `redis-server` on a free loopback
// port (the sentinels `redis-server sentinel.conf --sentinel`), with short
// down-after-milliseconds and failover-timeout so that failovers take a few seconds.
//
// Every operation that changes roles (failover, killMaster, restart) resolves only once the
// deployment has converged: every live sentinel names the same master, that node answers ROLE
// master, and every other live data node is its replica with the link up. Waits are bounded and
// time out with a SentinelHarnessTimeoutError that says what was still missing.
//
// Everything here talks to the servers through the raw RESP client (resp.ts), never through
// lib/, so the harness does not depend on the client under test.
//
//   let dep: SentinelDeployment;
//   before(async () => { dep = await startSentinels({ password: 'pw', sentinelPassword: 's3cret' }); }); // ~3-5 s
//   after(() => dep?.stop());
//
//   const db = loop.sentinel({ sentinels: dep.sentinelUrls, name: dep.name, sentinelPassword: 's3cret' }, { password: 'pw' });
//   const master = dep.master;                       // RedisServer, as of the last convergence
//   const events = dep.watch();                      // every sentinel's events, timestamped
//   const promoted = await dep.failover();           // SENTINEL FAILOVER, converged
//   const next = await dep.killMaster();             // SIGKILL, waits for the promotion
//   await dep.restart(old);                          // back as a replica
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LOOPBACK, startRedis, type RedisServer } from './redis.js';
import { createRespParser, encodeCommand, rawCommand, rawCommands } from './resp.js';

export interface StartSentinelOptions {
  /** The master's name in the sentinels' configuration (default 'mymaster'). */
  name?: string;
  /** Replicas of the master (default 2). */
  replicas?: number;
  /** Sentinels (default 3). */
  sentinels?: number;
  /** Sentinels that must agree the master is down (default 2). */
  quorum?: number;
  /** requirepass and masterauth on every data node; the sentinels get it as auth-pass. */
  password?: string;
  /** requirepass on every sentinel (and sentinel-pass, so they reach each other). */
  sentinelPassword?: string;
  /** down-after-milliseconds (default 1000). */
  downAfterMs?: number;
  /** failover-timeout (default 3000). */
  failoverTimeoutMs?: number;
  /** Default bound of every wait for convergence (default 30 s; the machine may be busy). */
  convergeTimeoutMs?: number;
}

/** Thrown when the deployment does not reach the awaited state in time; the message says what was missing. */
export class SentinelHarnessTimeoutError extends Error {
  override name = 'SentinelHarnessTimeoutError';
}

/** One event a sentinel published (`+switch-master`, `+sdown`...), as the harness received it. */
export interface SentinelEvent {
  /** Date.now() when the harness read it. */
  at: number;
  /** The sentinel's port. */
  sentinel: number;
  channel: string;
  message: string;
}

/** A live feed of every sentinel's events; stop() closes its sockets. */
export interface SentinelEventLog {
  readonly events: SentinelEvent[];
  /** Resolves with the first event (already received or to come) on `channel`, after `since`. */
  next(channel: string, since?: number, timeoutMs?: number): Promise<SentinelEvent>;
  stop(): void;
}

export async function startSentinels(opts: StartSentinelOptions = {}): Promise<SentinelDeployment> {
  const dep = new SentinelDeployment(opts);
  try {
    await dep.start();
  } catch (err) {
    await dep.stop();
    throw err;
  }
  return dep;
}

export class SentinelDeployment {
  readonly name: string;
  readonly password: string | undefined;
  readonly sentinelPassword: string | undefined;
  readonly quorum: number;
  readonly downAfterMs: number;
  readonly failoverTimeoutMs: number;
  /** Every data node (master and replicas), in start order; roles move, see `master`. */
  readonly nodes: RedisServer[] = [];
  readonly sentinels: RedisServer[] = [];
  /** The master as of the last convergence. */
  master!: RedisServer;
  private readonly replicaCount: number;
  private readonly sentinelCount: number;
  private readonly convergeTimeoutMs: number;
  private confDir: string | undefined;
  private readonly logs = new Set<SentinelEventLog>();

  /** @internal use startSentinels() */
  constructor(opts: StartSentinelOptions) {
    this.name = opts.name ?? 'mymaster';
    this.password = opts.password;
    this.sentinelPassword = opts.sentinelPassword;
    this.quorum = opts.quorum ?? 2;
    this.downAfterMs = opts.downAfterMs ?? 1000;
    this.failoverTimeoutMs = opts.failoverTimeoutMs ?? 3000;
    this.replicaCount = opts.replicas ?? 2;
    this.sentinelCount = opts.sentinels ?? 3;
    this.convergeTimeoutMs = opts.convergeTimeoutMs ?? 30_000;
  }

  /** redis://[:password@]127.0.0.1:PORT of every sentinel (the sentinel password included when set). */
  get sentinelUrls(): string[] {
    return this.sentinels.map((s) => `redis://${this.sentinelPassword !== undefined ? `:${encodeURIComponent(this.sentinelPassword)}@` : ''}${s.host}:${s.port}`);
  }

  /** { host, port } of every sentinel. */
  get sentinelAddresses(): Array<{ host: string; port: number }> {
    return this.sentinels.map((s) => ({ host: s.host, port: s.port }));
  }

  /** The data nodes other than the master (as of the last convergence), live or not. */
  get replicas(): RedisServer[] {
    return this.nodes.filter((n) => n !== this.master);
  }

  private dataArgs(): string[] {
    return this.password !== undefined ? ['--requirepass', this.password, '--masterauth', this.password] : [];
  }

  /** @internal */
  async start(): Promise<void> {
    this.master = await startRedis({ args: this.dataArgs() });
    this.nodes.push(this.master);
    const replicas = await Promise.all(Array.from({ length: this.replicaCount }, () =>
      startRedis({ args: [...this.dataArgs(), '--replicaof', this.master.host, String(this.master.port)] })));
    this.nodes.push(...replicas);
    // Replicas linked before the sentinels start: a sentinel learns them from the master's first INFO.
    await this.until('the replicas to link to the master', async () => {
      const info = String(await this.master.command('INFO', 'replication'));
      const online = (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
      return online === this.replicaCount ? true : `${online} of ${this.replicaCount} replicas online`;
    });
    this.confDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-sentinel-'));
    const started = await Promise.allSettled(Array.from({ length: this.sentinelCount }, (_, i) => this.startSentinel(i)));
    for (const s of started) if (s.status === 'fulfilled') this.sentinels.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await this.waitForConvergence();
  }

  private async startSentinel(i: number): Promise<RedisServer> {
    const file = path.join(this.confDir!, `sentinel-${i}.conf`);
    const lines = [
      `sentinel monitor ${this.name} ${this.master.host} ${this.master.port} ${this.quorum}`,
      `sentinel down-after-milliseconds ${this.name} ${this.downAfterMs}`,
      `sentinel failover-timeout ${this.name} ${this.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${this.name} ${this.replicaCount}`,
    ];
    if (this.password !== undefined) lines.push(`sentinel auth-pass ${this.name} ${this.password}`);
    if (this.sentinelPassword !== undefined) lines.push(`sentinel sentinel-pass ${this.sentinelPassword}`);
    await fs.promises.writeFile(file, lines.join('\n') + '\n');
    return startRedis({
      leadingArgs: [file, '--sentinel'],
      args: this.sentinelPassword !== undefined ? ['--requirepass', this.sentinelPassword] : [],
    });
  }

  /** One command to a sentinel with the raw client (authenticated when the sentinels have a password). */
  sentinelCommand(sentinel: RedisServer, ...args: Array<string | number>): Promise<unknown> {
    return rawCommand({ ...sentinel.endpoint, timeoutMs: 2000 }, ...args);
  }

  /** What `sentinel` says the master is: "host:port", or undefined. */
  async masterAddressOf(sentinel: RedisServer): Promise<string | undefined> {
    const reply = await this.sentinelCommand(sentinel, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name) as string[] | null;
    return reply === null ? undefined : `${reply[0]}:${reply[1]}`;
  }

  nodeAt(address: string): RedisServer | undefined {
    return this.nodes.find((n) => `${n.host}:${n.port}` === address);
  }

  /** ROLE of a data node: 'master', 'slave' (with its master's port and link) or an error text. */
  private async roleOf(node: RedisServer): Promise<{ role: string; masterPort?: number; linked?: boolean }> {
    const role = await rawCommand({ ...node.endpoint, timeoutMs: 1000 }, 'ROLE') as unknown[];
    if (role[0] === 'master') return { role: 'master' };
    return { role: String(role[0]), masterPort: Number(role[2]), linked: role[3] === 'connected' };
  }

  /**
   * Waits until every live sentinel names the same master (not `notThis`), that node says ROLE
   * master, every other live data node replicates from it with the link up, and every live
   * sentinel knows the others and the live replicas. Returns the master. With `replicasToo`
   * false it waits only for the sentinels and the master: an old master that is alive is
   * turned into a replica only some 10 s after a failover (the sentinels' INFO period).
   */
  async waitForConvergence(notThis?: RedisServer, timeoutMs = this.convergeTimeoutMs, replicasToo = true): Promise<RedisServer> {
    let master: RedisServer | undefined;
    await this.until('the deployment to converge', async () => {
      const live = this.sentinels.filter((s) => s.isRunning);
      if (live.length === 0) return 'no sentinel is running';
      const said = await Promise.all(live.map((s) => this.masterAddressOf(s).catch((e: Error) => `error: ${e.message}`)));
      if (new Set(said).size !== 1 || said[0] === undefined) return `sentinels name ${said.join(', ')}`;
      const node = this.nodeAt(said[0]);
      if (node === undefined) return `sentinels name ${said[0]}, not a node of this deployment`;
      if (node === notThis) return `sentinels still name the old master ${said[0]}`;
      if (!node.isRunning) return `sentinels name ${said[0]}, which is not running`;
      const role = await this.roleOf(node);
      if (role.role !== 'master') return `${said[0]} says ROLE ${role.role}`;
      if (!replicasToo) {
        master = node;
        return true;
      }
      for (const other of this.nodes) {
        if (other === node || !other.isRunning) continue;
        const r = await this.roleOf(other).catch((e: Error) => ({ role: `error ${e.message}` }) as { role: string; masterPort?: number; linked?: boolean });
        if (r.role !== 'slave' || r.masterPort !== node.port || r.linked !== true) {
          return `${other.port} is ${r.role}${r.masterPort !== undefined ? ` of ${r.masterPort}, link ${r.linked ? 'up' : 'down'}` : ''}`;
        }
      }
      const liveReplicas = this.nodes.filter((n) => n !== node && n.isRunning).length;
      for (const s of live) {
        const info = await this.sentinelCommand(s, 'SENTINEL', 'MASTER', this.name) as string[];
        const field = (k: string) => info[info.indexOf(k) + 1];
        const flags = String(field('flags'));
        if (flags !== 'master') return `sentinel ${s.port} flags the master ${flags}`;
        if (Number(field('num-other-sentinels')) < live.length - 1) return `sentinel ${s.port} knows ${field('num-other-sentinels')} other sentinels`;
        const replicas = await this.sentinelCommand(s, 'SENTINEL', 'REPLICAS', this.name) as string[][];
        const good = replicas.filter((r) => {
          const f = r[r.indexOf('flags') + 1] ?? '';
          return f === 'slave' && r[r.indexOf('master-link-status') + 1] === 'ok';
        }).length;
        if (good < liveReplicas) return `sentinel ${s.port} sees ${good} of ${liveReplicas} replicas up`;
      }
      master = node;
      return true;
    }, timeoutMs);
    this.master = master!;
    return master!;
  }

  /**
   * SENTINEL FAILOVER on the first live sentinel (retried while it answers INPROG or NOGOODSLAVE,
   * within the bound), then waits until every sentinel names the new master, which it returns.
   * With `converge`, also until the old master is a replica again (some 10 s more).
   */
  async failover(converge = false, timeoutMs = this.convergeTimeoutMs): Promise<RedisServer> {
    const old = this.master;
    await this.until('SENTINEL FAILOVER to be accepted', async () => {
      const s = this.sentinels.find((x) => x.isRunning);
      if (s === undefined) return 'no sentinel is running';
      try {
        await this.sentinelCommand(s, 'SENTINEL', 'FAILOVER', this.name);
        return true;
      } catch (err) {
        return `sentinel ${s.port}: ${(err as Error).message}`;
      }
    }, timeoutMs);
    return this.waitForConvergence(old, timeoutMs, converge);
  }

  /** Sends `signal` to the master (SIGKILL by default) and waits for a replica's promotion; returns it. */
  async killMaster(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = this.convergeTimeoutMs): Promise<RedisServer> {
    const old = this.master;
    old.kill(signal);
    if (signal === 'SIGKILL') await old.waitExit();
    return this.waitForPromotion(old, timeoutMs);
  }

  /** Waits until the sentinels name a master other than `old` and that node answers ROLE master. */
  async waitForPromotion(old: RedisServer, timeoutMs = this.convergeTimeoutMs): Promise<RedisServer> {
    let promoted: RedisServer | undefined;
    await this.until(`a replica of ${old.port} to be promoted`, async () => {
      for (const s of this.sentinels.filter((x) => x.isRunning)) {
        const addr = await this.masterAddressOf(s).catch(() => undefined);
        const node = addr === undefined ? undefined : this.nodeAt(addr);
        if (node === undefined || node === old || !node.isRunning) continue;
        if ((await this.roleOf(node).catch(() => ({ role: 'down' }))).role === 'master') {
          promoted = node;
          return true;
        }
      }
      return `the sentinels still name ${old.port}`;
    }, timeoutMs);
    this.master = promoted!;
    return promoted!;
  }

  /** Restarts a killed data node (or sentinel) and waits for convergence; a data node comes back as a replica. */
  async restart(server: RedisServer, timeoutMs = this.convergeTimeoutMs): Promise<void> {
    await server.restart();
    await this.waitForConvergence(undefined, timeoutMs);
  }

  /** Subscribes (raw, `PSUBSCRIBE *`) to every running sentinel's events until stop(). */
  watch(): SentinelEventLog {
    const events: SentinelEvent[] = [];
    const waiters: Array<{ channel: string; since: number; resolve: (e: SentinelEvent) => void }> = [];
    const sockets: net.Socket[] = [];
    for (const s of this.sentinels.filter((x) => x.isRunning)) {
      const socket = net.connect({ host: s.host, port: s.port });
      sockets.push(socket);
      const parser = createRespParser({
        returnReply: (reply: unknown) => {
          if (!Array.isArray(reply) || reply[0] !== 'pmessage') return;
          const e: SentinelEvent = { at: Date.now(), sentinel: s.port, channel: String(reply[2]), message: String(reply[3]) };
          events.push(e);
          for (let i = waiters.length - 1; i >= 0; i--) {
            const w = waiters[i]!;
            if (w.channel === e.channel && e.at >= w.since) {
              waiters.splice(i, 1);
              w.resolve(e);
            }
          }
        },
        returnError: () => {},
      });
      socket.on('data', (chunk) => parser.execute(chunk));
      socket.on('error', () => {});
      if (this.sentinelPassword !== undefined) socket.write(encodeCommand(['AUTH', this.sentinelPassword]));
      socket.write(encodeCommand(['PSUBSCRIBE', '*']));
    }
    const log: SentinelEventLog = {
      events,
      next: (channel, since = 0, timeoutMs = this.convergeTimeoutMs) => {
        const seen = events.find((e) => e.channel === channel && e.at >= since);
        if (seen !== undefined) return Promise.resolve(seen);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new SentinelHarnessTimeoutError(`no ${channel} event within ${timeoutMs} ms`)), timeoutMs);
          waiters.push({ channel, since, resolve: (e) => { clearTimeout(timer); resolve(e); } });
        });
      },
      stop: () => {
        for (const socket of sockets) socket.destroy();
        this.logs.delete(log);
      },
    };
    this.logs.add(log);
    return log;
  }

  /** Polls `check` (true when done, else a text saying what is missing) until true or the bound. */
  private async until(what: string, check: () => Promise<true | string>, timeoutMs = this.convergeTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const r = await check();
        if (r === true) return;
        last = r;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new SentinelHarnessTimeoutError(`waited ${timeoutMs} ms for ${what}; last: ${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops every process and removes the sentinels' configuration files. */
  async stop(): Promise<void> {
    for (const log of [...this.logs]) log.stop();
    await Promise.all([...this.sentinels, ...this.nodes].map((s) => s.stop()));
    if (this.confDir !== undefined) await fs.promises.rm(this.confDir, { recursive: true, force: true });
  }
}

/**
 * One sentinel of its own, monitoring `node` under `name` (e.g. a replica, to play a sentinel
 * pointed at the wrong node). Its conf file lives in its data dir; stop() removes both.
 */
export async function startLoneSentinel(opts: { name: string; node: RedisServer; password?: string; sentinelPassword?: string; quorum?: number; tls?: boolean }): Promise<RedisServer> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-sentinel-'));
  const file = path.join(dir, 'sentinel.conf');
  const lines = [
    `sentinel monitor ${opts.name} ${opts.node.host} ${opts.node.port} ${opts.quorum ?? 2}`,
    `sentinel down-after-milliseconds ${opts.name} 1000`,
  ];
  if (opts.password !== undefined) lines.push(`sentinel auth-pass ${opts.name} ${opts.password}`);
  await fs.promises.writeFile(file, lines.join('\n') + '\n');
  const server = await startRedis({
    leadingArgs: [file, '--sentinel'],
    args: opts.sentinelPassword !== undefined ? ['--requirepass', opts.sentinelPassword] : [],
    tls: opts.tls,
  });
  const stop = server.stop.bind(server);
  server.stop = async (timeoutMs?: number) => {
    await stop(timeoutMs);
    await fs.promises.rm(dir, { recursive: true, force: true });
  };
  return server;
}

/** Whether `address` ("host:port") answers ROLE master (raw client), for checks in tests. */
export async function roleAt(host: string, port: number, password?: string): Promise<string> {
  const [role] = await rawCommands({ host, port, password, timeoutMs: 1000 }, [['ROLE']]) as unknown[][];
  return String((role as unknown[])[0]);
}

export { LOOPBACK as SENTINEL_HOST };
