/**
 * A reply sink for the library's own commands (the handshake, QUIT, the routing layer's COMMAND
 * and CLUSTER SHARDS): it calls back once and is never reported as an unobserved failure.
 */
import type { ReplySink } from '../base/reply-sink.js';

export class CallbackSink implements ReplySink {
  settled = false;
  readonly returnBuffers = false;
  /** Absolute time (ms since epoch) after which the connection times it out; 0 for none. */
  deadline: number;
  constructor(readonly command: string, private readonly done: (err: Error | null, reply?: unknown) => void, timeoutMs = 0) {
    this.deadline = timeoutMs > 0 ? Date.now() + timeoutMs : 0;
  }
  resolveReply(reply: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.done(null, reply);
  }
  rejectReply(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.done(err);
  }
}
