// A tiny raw RESP client for assertions in tests and for the benchmark's data fill.
// It is deliberately independent of lib/: a test must be able to check what the server
// holds without trusting the client under test.
import net from 'node:net';
import tls from 'node:tls';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The subset of redis-parser (which ships no types) that the harness uses. */
export interface RespParser {
  execute(chunk: Buffer): void;
  reset(): void;
}

export interface RespParserOptions {
  returnReply(reply: unknown): void;
  returnError(err: Error): void;
  returnFatalError?(err: Error): void;
  returnBuffers?: boolean;
  stringNumbers?: boolean;
}

const RedisParser = require('redis-parser') as new (options: RespParserOptions) => RespParser;

export function createRespParser(options: RespParserOptions): RespParser {
  return new RedisParser(options);
}

export type RespArg = string | number | Buffer;

/** Encode one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly RespArg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const buf = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${buf.length}\r\n`), buf, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export interface RawEndpoint {
  host: string;
  port: number;
  /** When set, connect with TLS and trust this CA. */
  ca?: Buffer;
  /** When set, AUTH first (the reply is checked and not returned). */
  password?: string;
  timeoutMs?: number;
  /** Bulk replies as Buffers instead of UTF-8 strings (for binary keys, e.g. GETKEYSINSLOT). */
  returnBuffers?: boolean;
}

/** An error reply from the server, kept apart from transport errors. */
export class RawReplyError extends Error {
  override name = 'RawReplyError';
}

/**
 * Open a socket, send the commands in one write, read exactly one reply per command and
 * close. Error replies are returned as RawReplyError values, not thrown, so a caller can
 * assert on them; transport failures reject.
 */
export async function rawCommands(endpoint: RawEndpoint, commands: readonly (readonly RespArg[])[]): Promise<unknown[]> {
  const all = endpoint.password !== undefined ? [['AUTH', endpoint.password], ...commands] : [...commands];
  const replies: unknown[] = [];
  const timeoutMs = endpoint.timeoutMs ?? 5000;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const socket: net.Socket = endpoint.ca
      ? tls.connect({ host: endpoint.host, port: endpoint.port, ca: endpoint.ca, servername: 'localhost' })
      : net.connect({ host: endpoint.host, port: endpoint.port });
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () => finish(new Error(`raw RESP client: no reply from ${endpoint.host}:${endpoint.port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const parser = createRespParser({
      returnReply: (reply) => {
        replies.push(reply);
        if (replies.length === all.length) finish();
      },
      returnError: (err) => {
        replies.push(new RawReplyError(err.message));
        if (replies.length === all.length) finish();
      },
      returnFatalError: (err) => finish(err),
      returnBuffers: endpoint.returnBuffers ?? false,
    });
    socket.on(endpoint.ca ? 'secureConnect' : 'connect', () => {
      socket.write(Buffer.concat(all.map((c) => encodeCommand(c))));
    });
    socket.on('data', (chunk: Buffer) => parser.execute(chunk));
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`raw RESP client: connection to ${endpoint.host}:${endpoint.port} closed after ${replies.length}/${all.length} replies`)));
  });
  if (endpoint.password !== undefined) {
    const auth = replies.shift();
    if (auth instanceof Error) throw auth;
  }
  return replies;
}

/** Send one command and return its reply; an error reply rejects. */
export async function rawCommand(endpoint: RawEndpoint, ...args: RespArg[]): Promise<unknown> {
  const [reply] = await rawCommands(endpoint, [args]);
  if (reply instanceof Error) throw reply;
  return reply;
}
