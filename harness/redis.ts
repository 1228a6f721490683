// Throwaway redis-server (or valkey-server: see servers.ts) processes on free loopback ports,
// for tests and benchmarks.
//
// Each server gets its own temp dir and no persistence. Every server started here is kept in
// a registry, so the mocha root hook (hooks.ts) and a process 'exit' handler can stop what a
// failed test left running.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { rawCommand, rawCommands, type RespArg } from './resp.js';
import { isMissingBinary, missingBinaryMessage, serverBinaries, type ServerBinaries, type ServerFamily } from './servers.js';
import { removeTlsMaterial, tlsMaterial } from './tls-certs.js';

const execFileAsync = promisify(execFile);

export const LOOPBACK = '127.0.0.1';

/** What a missing redis-server on PATH says (the default family); see missingBinaryMessage() for the chosen one. */
export const REDIS_SERVER_MISSING = missingBinaryMessage('server', serverBinaries({}));
/** What a missing redis-cli on PATH says (the default family); see missingBinaryMessage() for the chosen one. */
export const REDIS_CLI_MISSING = missingBinaryMessage('cli', serverBinaries({}));

export interface StartRedisOptions {
  /** Extra server arguments, e.g. ['--requirepass', 'x']. */
  args?: string[];
  /** The binaries to run (default: serverBinaries(), i.e. what REDLOOP_SERVER / REDLOOP_SERVER_DIR choose). */
  binaries?: ServerBinaries;
  /** Listen with TLS only (a generated CA; clients are not asked for certificates). */
  tls?: boolean;
  /** Use this port instead of a free one (no retry on EADDRINUSE then). */
  port?: number;
  /** How long to wait for "Ready to accept connections" (default 10 s). */
  startTimeoutMs?: number;
  /**
   * Arguments before all others: a config file (and `--sentinel`), which redis-server wants
   * first. The file is the caller's; a sentinel rewrites it.
   */
  leadingArgs?: string[];
}

/** A free TCP port on the loopback interface, found by binding port 0 and closing it. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

class PortInUseError extends Error {
  override name = 'PortInUseError';
}

const OUTPUT_KEEP = 64 * 1024;
const registry = new Set<RedisServer>();

export class RedisServer {
  readonly host = LOOPBACK;
  process!: ChildProcess;
  /** CA certificate (PEM) when the server listens with TLS. */
  readonly ca?: Buffer;
  private output = '';
  private exited!: Promise<number | string | null>;
  private running = false;
  private removed = false;

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly tls: boolean,
    /** The complete redis-server argument list (including port, dir, TLS files). */
    readonly args: readonly string[],
    ca: Buffer | undefined,
    readonly password: string | undefined,
    /** The server and cli it runs (chosen once, at start: a restart runs the same binary). */
    readonly binaries: ServerBinaries,
  ) {
    this.ca = ca;
  }

  /** redis://127.0.0.1:PORT/0, or rediss:// for a TLS server. */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://${this.host}:${this.port}/0`;
  }

  /** 'redis' or 'valkey': which binary runs (the server's own INFO says the same). */
  get family(): ServerFamily {
    return this.binaries.family;
  }

  /** The binary's name, for messages: redis-server or valkey-server. */
  private get name(): string {
    return `${this.binaries.family}-server`;
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** The last 64 KiB of the server's stdout and stderr (its log), for error messages. */
  get log(): string {
    return this.output;
  }

  /** Where rawCommand / rawCommands should connect to reach this server. */
  get endpoint(): { host: string; port: number; ca?: Buffer; password?: string } {
    return { host: this.host, port: this.port, ca: this.ca, password: this.password };
  }

  /** @internal use startRedis() */
  static async create(opts: StartRedisOptions): Promise<RedisServer> {
    const attempts = opts.port !== undefined ? 1 : 5;
    const extra = opts.args ?? [];
    const pwIndex = extra.indexOf('--requirepass');
    const password = pwIndex >= 0 ? extra[pwIndex + 1] : undefined;
    const material = opts.tls ? await tlsMaterial() : undefined;
    const binaries = opts.binaries ?? serverBinaries();
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const port = opts.port ?? (await findFreePort());
      const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'redloop-redis-'));
      const listen = material
        ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', material.certFile,
          '--tls-key-file', material.keyFile, '--tls-ca-cert-file', material.caFile, '--tls-auth-clients', 'no']
        : ['--port', String(port)];
      const args = [
        ...(opts.leadingArgs ?? []),
        ...listen,
        '--bind', LOOPBACK, '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no',
        ...extra,
      ];
      const server = new RedisServer(port, dir, Boolean(material), args, material?.ca, password, binaries);
      try {
        await server.launch(opts.startTimeoutMs ?? 10_000);
        return server;
      } catch (err) {
        lastError = err;
        await server.stop();
        if (!(err instanceof PortInUseError)) throw err;
      }
    }
    throw lastError;
  }

  private launch(timeoutMs: number): Promise<void> {
    this.output = '';
    const child = spawn(this.binaries.server, [...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    this.running = true;
    registry.add(this);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.running = false;
        resolve(code ?? signal);
      });
    });
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
      if (this.output.length > OUTPUT_KEEP) this.output = this.output.slice(-OUTPUT_KEEP);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);

    return new Promise<void>((resolve, reject) => {
      let done = false;
      const settle = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(probe);
        child.stdout!.off('data', watch);
        child.off('exit', onExit);
        child.off('error', onError);
        if (err) reject(err);
        else resolve();
      };
      const onError = (err: NodeJS.ErrnoException) => {
        this.running = false;
        settle(isMissingBinary(err) ? new Error(missingBinaryMessage('server', this.binaries)) : err);
      };
      const onExit = (code: number | null, signal: string | null) => {
        if (/Address already in use/.test(this.output)) {
          settle(new PortInUseError(`port ${this.port} is in use`));
        } else {
          settle(new Error(`${this.name} on port ${this.port} exited during start (${code ?? signal}):\n${this.output}`));
        }
      };
      // Poll PING plus INFO until the process that answers is ours: a PING alone could be
      // answered by whatever else holds the port if our server failed to bind it. (Not the
      // "Ready to accept connections" log line: --loglevel warning hides it.)
      let probe: NodeJS.Timeout | undefined;
      const poll = () => {
        probe = undefined;
        if (done || !this.running) return;
        rawCommands({ ...this.endpoint, timeoutMs: 2000 }, [['PING'], ['INFO', 'server']]).then(
          ([pong, info]) => {
            const pid = /process_id:(\d+)/.exec(String(info))?.[1];
            if (pong === 'PONG' && pid === String(child.pid)) settle();
            else if (pong instanceof Error || info instanceof Error) settle(new Error(`${this.name} on port ${this.port} answered ${String(pong)} / ${String(info)}`));
            else probe = setTimeout(poll, 20);
          },
          () => { probe = setTimeout(poll, 20); },
        );
      };
      const watch = () => {
        if (probe && /Ready to accept connections/.test(this.output)) { clearTimeout(probe); poll(); }
      };
      probe = setTimeout(poll, 10);
      const timer = setTimeout(
        () => settle(new Error(`${this.name} on port ${this.port} was not ready within ${timeoutMs} ms:\n${this.output}`)),
        timeoutMs,
      );
      child.once('error', onError);
      child.once('exit', onExit);
      child.stdout!.on('data', watch);
    });
  }

  /** Send a signal (SIGKILL, SIGSTOP, SIGCONT, ...) to the server process. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.process.kill(signal);
  }

  /** Resolve with the exit code or signal once the process has exited. */
  waitExit(): Promise<number | string | null> {
    return this.exited;
  }

  /** Stop the process (if running) without removing the data dir. */
  private async halt(timeoutMs: number): Promise<void> {
    if (this.running) {
      this.process.kill('SIGTERM');
      // A SIGSTOPped server only sees SIGTERM once it is continued.
      this.process.kill('SIGCONT');
      const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
  }

  /** Start again on the same port and dir with the same arguments (e.g. after kill()). */
  async restart(timeoutMs = 10_000): Promise<void> {
    await this.halt(5000);
    if (this.removed) {
      await fs.promises.mkdir(this.dir, { recursive: true });
      this.removed = false;
    }
    // The port was ours a moment ago; if someone took it, say so instead of retrying.
    await this.launch(timeoutMs);
  }

  /** SIGTERM, then SIGKILL after timeoutMs; wait for exit and remove the temp dir. */
  async stop(timeoutMs = 5000): Promise<void> {
    await this.halt(timeoutMs);
    registry.delete(this);
    if (!this.removed) {
      await fs.promises.rm(this.dir, { recursive: true, force: true });
      this.removed = true;
    }
  }

  /** Synchronous last resort for process exit. */
  killNowSync(): void {
    if (this.running) this.process.kill('SIGKILL');
    registry.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.removed = true;
  }

  /** Run one command with the raw RESP client (independent of lib/); error replies reject. */
  command(...args: RespArg[]): Promise<unknown> {
    return rawCommand(this.endpoint, ...args);
  }

  /** Run several commands in one write on one raw connection; error replies come back as values. */
  commands(commands: readonly (readonly RespArg[])[]): Promise<unknown[]> {
    return rawCommands(this.endpoint, commands);
  }

  /** Run redis-cli (valkey-cli for a Valkey server) against this server and return its trimmed stdout. */
  async cli(...args: string[]): Promise<string> {
    const base = ['-h', this.host, '-p', String(this.port)];
    if (this.tls && this.ca) {
      const material = await tlsMaterial();
      base.push('--tls', '--cacert', material.caFile);
    }
    if (this.password !== undefined) base.push('-a', this.password, '--no-auth-warning');
    try {
      const { stdout } = await execFileAsync(this.binaries.cli, [...base, ...args]);
      return stdout.trim();
    } catch (err) {
      if (isMissingBinary(err)) throw new Error(missingBinaryMessage('cli', this.binaries));
      throw err;
    }
  }
}

/** Start one server (redis-server, or what REDLOOP_SERVER chooses) on a free loopback port and wait until it answers PING. */
export function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  return RedisServer.create(opts);
}

/** Start n independent servers (client-side shards). */
export async function startShards(n: number, opts: Omit<StartRedisOptions, 'port'> = {}): Promise<RedisServer[]> {
  const settled = await Promise.allSettled(Array.from({ length: n }, () => startRedis(opts)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<RedisServer>).value);
}

/** Every server started here that has not been stopped. */
export function runningServers(): RedisServer[] {
  return [...registry];
}

/** Stop every server still registered (the root hook calls this after all tests). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...registry].map((s) => s.stop()));
}

/** True when the chosen server binary runs (lets a suite skip instead of fail, if it wants to). */
export async function haveRedisServer(): Promise<boolean> {
  try {
    await execFileAsync(serverBinaries().server, ['--version']);
    return true;
  } catch {
    return false;
  }
}

function killAllNowSync(): void {
  for (const server of [...registry]) server.killNowSync();
}

process.on('exit', killAllNowSync);

// A signal ends the process without 'exit': stop the servers and remove their dirs first.
// When nobody else handles the signal, re-raise it so the process still dies of it.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = () => {
    killAllNowSync();
    removeTlsMaterial();
    if (process.listenerCount(signal) === 1) {
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    }
  };
  process.on(signal, onSignal);
}
