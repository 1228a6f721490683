// A tiny fake Redis server on 127.0.0.1, for what a real redis-server never sends: bytes that
// are not RESP, half a reply followed by a close, replies nobody asked for, a socket that
// accepts and then says nothing, a server without HELLO. Tests script it per command; everything
// else is answered like a minimal RESP2-only Redis (PING, ECHO, HELLO unknown as in Redis 5,
// anything else +OK).
//
// The server and its sockets are unref()'d, so a test that forgets to close one cannot hold
// the mocha process open.
import net from 'node:net';
import { createRespParser } from './resp.js';

export interface FakeClient {
  /** 1 for the first connection the server accepted, 2 for the next... */
  readonly index: number;
  readonly socket: net.Socket;
  /** Every command this client sent, decoded as strings, in order. */
  readonly commands: string[][];
  /** Writes raw bytes (use the resp helpers below for well-formed replies). */
  write(raw: string | Buffer): void;
}

/**
 * Decides what to send for one command. Return a string/Buffer to send it, `null` to send
 * nothing (stall), or `undefined` to fall back to the default minimal-Redis answer.
 */
export type FakeHandler = (command: string[], client: FakeClient) => string | Buffer | null | undefined;

export interface FakeServerOptions {
  onCommand?: FakeHandler;
  /** Called when a client connects, before any command. */
  onConnection?: (client: FakeClient) => void;
  /** Takes the raw bytes instead of parsing them as RESP commands (e.g. to ignore a TLS hello). */
  onData?: (chunk: Buffer, client: FakeClient) => void;
}

export const resp = {
  simple: (s: string) => `+${s}\r\n`,
  error: (s: string) => `-${s}\r\n`,
  int: (n: number) => `:${n}\r\n`,
  bulk: (s: string | null) => (s === null ? '$-1\r\n' : `$${Buffer.byteLength(s)}\r\n${s}\r\n`),
};

/** The minimal Redis every fake server speaks unless a handler says otherwise. */
export function defaultAnswer(command: string[]): string {
  const name = (command[0] ?? '').toUpperCase();
  if (name === 'PING') return command.length > 1 ? resp.bulk(command[1]!) : resp.simple('PONG');
  if (name === 'ECHO') return resp.bulk(command[1] ?? '');
  // Redis 5's answer (it names the arguments, the password too: a client must never show it).
  if (name === 'HELLO') return resp.error(`ERR unknown command \`HELLO\`, with args beginning with: ${command.slice(1).map((a) => `\`${a}\`, `).join('')}`);
  return resp.simple('OK');
}

export class FakeServer {
  readonly host = '127.0.0.1';
  readonly clients: FakeClient[] = [];
  private connectionWaiters: Array<{ index: number; resolve: (c: FakeClient) => void }> = [];

  private constructor(private readonly server: net.Server, readonly port: number) {}

  /** Starts listening on a free loopback port. */
  static start(options: FakeServerOptions = {}): Promise<FakeServer> {
    return new Promise((resolve, reject) => {
      let fake: FakeServer;
      const server = net.createServer((socket) => fake.accept(socket, options));
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        fake = new FakeServer(server, (server.address() as net.AddressInfo).port);
        resolve(fake);
      });
    });
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  /** How many connections were accepted so far. */
  get connectionCount(): number {
    return this.clients.length;
  }

  /** Resolves with the index-th client (1-based) once it has connected. */
  waitForConnection(index: number): Promise<FakeClient> {
    const have = this.clients[index - 1];
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve) => this.connectionWaiters.push({ index, resolve }));
  }

  private accept(socket: net.Socket, options: FakeServerOptions): void {
    socket.unref();
    socket.on('error', () => { /* the client under test may reset the socket */ });
    const client: FakeClient = {
      index: this.clients.length + 1,
      socket,
      commands: [],
      write: (raw) => { if (!socket.destroyed) socket.write(raw); },
    };
    this.clients.push(client);
    const parser = createRespParser({
      returnReply: (reply) => {
        const command = (reply as unknown[]).map((a) => String(a));
        client.commands.push(command);
        const answer = options.onCommand?.(command, client);
        if (answer === null) return;
        client.write(answer === undefined ? defaultAnswer(command) : answer);
      },
      returnError: () => socket.destroy(),
      returnFatalError: () => socket.destroy(),
    });
    const onData = options.onData;
    socket.on('data', onData !== undefined ? (chunk: Buffer) => onData(chunk, client) : (chunk: Buffer) => parser.execute(chunk));
    options.onConnection?.(client);
    this.connectionWaiters = this.connectionWaiters.filter((w) => {
      if (w.index !== client.index) return true;
      w.resolve(client);
      return false;
    });
  }

  /** Stops listening and destroys every client socket. */
  close(): Promise<void> {
    for (const c of this.clients) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Starts a fake server (see FakeServer). */
export function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  return FakeServer.start(options);
}
