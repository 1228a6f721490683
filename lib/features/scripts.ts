/**
 * Lua scripts that load themselves: run() sends EVALSHA (the SHA1 only, not the source); a
 * node that answers NOSCRIPT (never loaded, SCRIPT FLUSH, restarted, a replica promoted by a
 * failover) gets the same call again as EVAL, which runs it and leaves it in that node's
 * script cache, so the next EVALSHA there succeeds. No SCRIPT LOAD round trip, no state kept
 * here about which node has what: the server's answer is the truth.
 *
 * Each call has its own sink, so in a pipelined burst where many EVALSHA fail, each one is
 * re-sent as EVAL when its own NOSCRIPT arrives, in the order they arrive, and its reply can
 * only go to its own future. On a cluster or shard set the call is routed by its keys (the
 * server's key specs for EVALSHA/EVAL: numkeys, then the keys), and the EVAL is routed again,
 * so a slot that moved in between is followed.
 */
import { frontOf } from '../core/cached-send.js';
import { createHash } from 'node:crypto';
import { Future, type UnobservedErrorSink } from '../core/future.js';
import { ForwardingSink } from '../base/reply-sink.js';
import { encodeCommand, type Arg, type Encoded } from '../protocol/encoder.js';
import { ReplyError } from '../base/errors.js';
import type { CommandTarget } from '../connection/target.js';
import { checkTarget } from '../routing/targets.js';
import { commandOptionsError } from '../base/options.js';

export interface ScriptRunOptions {
  /** Decode the reply's strings as Buffers (default: the target's setting). */
  returnBuffers?: boolean;
}

/** Between the FIFO and the caller: a NOSCRIPT turns into one EVAL of the same call. */
class ScriptSink extends ForwardingSink {
  private retried = false;
  constructor(
    private readonly script: Script,
    user: Future<unknown>,
    private readonly target: CommandTarget,
    /** [sha, numkeys, ...keys, ...args]: argv[0] becomes the source for EVAL. */
    private readonly argv: unknown[],
  ) {
    super(user);
  }
  override get command(): string { return this.retried ? 'EVAL' : 'EVALSHA'; }

  resolveReply(reply: unknown): void {
    this.user.resolveReply(reply); // errors in a script's table are ReplyErrors already (the decoder)
  }

  rejectReply(err: Error): void {
    if (this.retried || !(err instanceof ReplyError) || err.code !== 'NOSCRIPT' || this.user.settled) {
      this.user.rejectReply(err);
      return;
    }
    this.retried = true;
    this.script.noscripts++;
    this.argv[0] = this.script.source;
    this.target.submit(encodeCommand('EVAL', this.argv) as Encoded, this, 'EVAL', this.argv, 0);
  }
}

export class Script {
  /** The SHA1 EVALSHA names the script by. */
  readonly sha: string;
  /** NOSCRIPT answers turned into an EVAL so far (for tests and curiosity). */
  noscripts = 0;

  /** @internal use loop.script() */
  constructor(private readonly reporter: UnobservedErrorSink & object, readonly source: string) {
    if (typeof source !== 'string' || source === '') throw new TypeError('script(): the source must be a non-empty string of Lua');
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /**
   * Runs the script with `keys` (KEYS[1..]) and `args` (ARGV[1..]) on the target: EVALSHA, and
   * EVAL if the node does not have it. On a cluster or shard set the keys pick the node.
   */
  run<T = any>(target: CommandTarget, keys: readonly Arg[] = [], args: readonly Arg[] = [], options?: ScriptRunOptions): Future<T> {
    const bad = checkTarget(target, this.reporter, 'script.run()') ?? commandOptionsError(options, ['returnBuffers'], 'script.run(): ');
    const future = new Future<T>('EVALSHA', options?.returnBuffers ?? (bad === undefined && target.defaultReturnBuffers), this.reporter);
    if (bad !== undefined) {
      future.rejectReply(bad);
      return future;
    }
    if (!Array.isArray(keys) || !Array.isArray(args)) {
      future.rejectReply(new TypeError("script.run(target, keys, args): keys and args must be arrays, e.g. run(conn, ['counter'], [5])"));
      return future;
    }
    const argv: unknown[] = [this.sha, keys.length, ...keys, ...args];
    const encoded = encodeCommand('EVALSHA', argv);
    if (typeof encoded !== 'string' && !Array.isArray(encoded)) {
      future.rejectReply(encoded);
      return future;
    }
    if (target.commandTimeout !== 0) future.deadline = Date.now() + target.commandTimeout;
    frontOf(target)?.beforeSend('EVALSHA', argv, 0); // the keys it declares leave the client-side cache
    target.submit(encoded, new ScriptSink(this, future as Future<unknown>, target, argv), 'EVALSHA', argv, 0);
    return future;
  }
}

/** A script object for `source` (loop.script). */
export function script(reporter: UnobservedErrorSink & object, source: string): Script {
  return new Script(reporter, source);
}
