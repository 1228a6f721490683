/**
 * What a connection publishes (docs/tracing.md): each socket write of commands on
 * `redloop:write` (and the traced commands it carried, marked written), each connection
 * attempt on `redloop:connect`, each scheduled reconnect on `redloop:reconnect`. The connection
 * calls in here only after a `hasSubscribers` check, so none of it runs while nobody listens.
 */
import {
  commandChannel, connectChannel, markWritten, reconnectChannel, writeChannel,
  type ConnectMessage, type ReconnectMessage, type WriteMessage,
} from '../base/channels.js';
import type { ResolvedOptions } from '../base/options.js';
import type { ReplyQueue } from './reply-queue.js';
import type { WriteBuffer } from './write-buffer.js';

/** The connection as its messages name it. */
export interface TracedConnection {
  readonly id: number;
  readonly address: string;
}

/** Whether a write has anybody to tell: the one check a write pays while nobody listens. */
export function writeObserved(): boolean {
  return writeChannel.hasSubscribers || commandChannel.hasSubscribers;
}

/**
 * Writes what `writes` holds as WriteBuffer.write() does, then marks the traced commands it
 * carried as written (their sinks are the tail of `replies`) and publishes the write.
 * Returns whether anything was written.
 */
export function tracedWrite(conn: TracedConnection, options: ResolvedOptions, writes: WriteBuffer, replies: ReplyQueue): boolean {
  const commands = writes.length;
  const answered = commands - writes.unansweredCount;
  const told = writeChannel.hasSubscribers;
  const bytes = told ? writes.byteLength() : 0;
  if (!writes.write()) return false;
  const serverAddress = options.path ?? options.host;
  const serverPort = options.path === undefined ? options.port : undefined;
  if (commandChannel.hasSubscribers) {
    for (let i = replies.length - answered; i < replies.length; i++) {
      const trace = replies.at(i)?.trace;
      if (trace !== undefined) markWritten(trace, serverAddress, serverPort, options.db);
    }
  }
  if (told) {
    const message: WriteMessage = { connectionId: conn.id, address: conn.address, serverAddress, serverPort, commands, bytes };
    writeChannel.publish(message);
  }
  return true;
}

/** Starts the trace of a connection attempt (`attempt` as `reconnecting` numbers it: 0 for the first). */
export function connectStarted(conn: TracedConnection, options: ResolvedOptions, attempt: number): ConnectMessage {
  const message: ConnectMessage = {
    connectionId: conn.id,
    address: conn.address,
    serverAddress: options.path ?? options.host,
    serverPort: options.path === undefined ? options.port : undefined,
    db: options.db,
    tls: options.tls !== undefined,
    attempt,
  };
  connectChannel.start.publish(message);
  connectChannel.end.publish(message);
  return message;
}

/** The attempt ended: ready (no `error`), or failed with `error`. */
export function connectEnded(message: ConnectMessage, error: Error | undefined): void {
  if (error !== undefined) {
    message.error = error;
    connectChannel.error.publish(message);
  }
  connectChannel.asyncStart.publish(message);
  connectChannel.asyncEnd.publish(message);
}

export function reconnectScheduled(conn: TracedConnection, attempt: number, delay: number, error: Error): void {
  const message: ReconnectMessage = { connectionId: conn.id, address: conn.address, attempt, delay, error };
  reconnectChannel.publish(message);
}

export { connectChannel, reconnectChannel };