/**
 * Commands a routing layer sends for itself (COMMAND, CLUSTER SHARDS, ASKING): straight to a
 * connection's FIFO, with a sink that settles a Promise, and never reported as unobserved.
 */
import type { ReplySink } from '../base/reply-sink.js';
import { encodeCommand, type Encoded } from '../protocol/encoder.js';
import { CallbackSink } from '../connection/callback-sink.js';

/** Anything with a connection's submit (a Connection, without importing it). */
export interface Submitter {
  submit(encoded: Encoded, sink: ReplySink): void;
}

/** Sends `args` on `conn` and resolves with the reply (rejects on an error reply or timeout). */
export function ask(conn: Submitter, args: readonly string[], timeoutMs = 0): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sink = new CallbackSink(args[0]!, (err, reply) => (err === null ? resolve(reply) : reject(err)), timeoutMs);
    conn.submit(encodeCommand(args[0]!, args, 1) as Encoded, sink);
  });
}

/** A sink whose reply nobody needs (ASKING's OK). */
export const IGNORED_REPLY: ReplySink = {
  command: 'ASKING', returnBuffers: false, deadline: 0, settled: false,
  resolveReply() {}, rejectReply() {},
};
