// The raw floor: RESP encoded before the clock starts, written on a plain socket, replies
// parsed by redis-parser and checked one by one. No client library can do less work.
import net from 'node:net';
import { createRespParser, type RespParser } from '../harness/resp.js';
import type { Endpoint } from './types.js';

/** Encode commands of plain ASCII arguments into one buffer (fast enough for millions). */
export function encodeAscii(commands: Iterable<readonly string[]>): Buffer {
  let out = '';
  for (const args of commands) {
    out += `*${args.length}\r\n`;
    for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  }
  return Buffer.from(out, 'utf8');
}

/** The same command `times` times. */
export function encodeRepeated(args: readonly string[], times: number): Buffer {
  const one = encodeAscii([args]);
  const buf = Buffer.allocUnsafe(one.length * times);
  for (let i = 0; i < times; i++) one.copy(buf, i * one.length);
  return buf;
}

type Check = (reply: unknown, index: number) => void;

interface Exchange {
  expected: number;
  received: number;
  check: Check;
  resolve(): void;
  reject(err: unknown): void;
}

export class RawPipe {
  private readonly parser: RespParser;
  private current: Exchange | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    this.parser = createRespParser({
      returnReply: (reply) => this.onReply(reply),
      returnError: (err) => this.onReply(err),
      returnFatalError: (err) => this.onFailure(err),
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.parser.execute(chunk));
    socket.on('error', (err) => this.onFailure(err));
    socket.on('close', () => this.onFailure(new Error('raw floor: connection closed')));
  }

  static async open(e: Endpoint): Promise<RawPipe> {
    const socket = net.connect({ host: e.host, port: e.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const pipe = new RawPipe(socket);
    const hello: string[][] = [];
    if (e.password !== undefined) hello.push(e.username !== undefined ? ['AUTH', e.username, e.password] : ['AUTH', e.password]);
    if (e.db !== 0) hello.push(['SELECT', String(e.db)]);
    hello.push(['PING']);
    await pipe.exchange(encodeAscii(hello), hello.length, (reply) => {
      if (reply !== 'OK' && reply !== 'PONG') throw new Error(`raw floor: handshake answered ${String(reply)}`);
    });
    return pipe;
  }

  /** Write `buf` (holding `expected` commands) and resolve once as many replies passed `check`. */
  exchange(buf: Buffer, expected: number, check: Check): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.current) return Promise.reject(new Error('raw floor: one exchange at a time'));
    return new Promise<void>((resolve, reject) => {
      this.current = { expected, received: 0, check, resolve, reject };
      this.socket.write(buf);
    });
  }

  private onReply(reply: unknown): void {
    const ex = this.current;
    if (!ex) return this.onFailure(new Error('raw floor: a reply nobody asked for'));
    try {
      ex.check(reply, ex.received);
    } catch (err) {
      this.current = undefined;
      ex.reject(err);
      this.socket.destroy();
      return;
    }
    if (++ex.received === ex.expected) {
      this.current = undefined;
      ex.resolve();
    }
  }

  private onFailure(err: Error): void {
    this.failure ??= err;
    const ex = this.current;
    this.current = undefined;
    ex?.reject(err);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.current = undefined;
      this.failure ??= new Error('raw floor: closed');
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}
