/**
 * One cached read on the wire, as rueidis sends it: `CLIENT CACHING YES`, the read, and `PTTL`
 * of each of its keys, contiguous on one tracked connection, in one round trip. The reply is
 * handed to its callers as soon as it arrives; it is kept once the PTTLs have come back, and
 * only if CACHING YES was accepted (the read was tracked) and nothing invalidated it meanwhile.
 *
 * A read may serve several cache entries: an MGET's missing keys go out as one MGET whose n-th
 * value is the n-th key's entry (`perKey`), each bounded by its own key's PTTL.
 */
import type { ReplySink } from '../base/reply-sink.js';
import { encodeCommand, type Encoded } from '../protocol/encoder.js';
import type { NodeCache, PendingRead } from './store.js';
import { keepable } from './entry-size.js';

export const CACHING_YES = encodeCommand('CLIENT', ['CACHING', 'YES']) as string;

/** What a request needs from the connection it runs on. */
export interface RequestConnection {
  submit(encoded: Encoded, sink: ReplySink): void;
}

/** Where the reply goes when the read could not be served here (a cluster's MOVED): sent again, uncached. */
export type Fallback = (err: Error, request: CachedRequest) => boolean;

export class CachedRequest {
  private cachingOk: boolean;
  private value: unknown = undefined;
  private ok = false;
  private done = false;
  private readonly pttls: unknown[];
  private pttlLeft: number;

  constructor(
    readonly node: NodeCache,
    readonly parts: readonly PendingRead[],
    readonly perKey: boolean,
    readonly command: string,
    readonly returnBuffers: boolean,
    readonly bigInt: boolean | undefined,
    readonly resp3: boolean | undefined,
    readonly encoded: Encoded,
    /** The read as [name, ...args], to send it again elsewhere (fallback). */
    readonly argv: readonly unknown[],
    private readonly fallback: Fallback | undefined,
    /** BCAST mode sends no CACHING YES: tracking of the prefixes is what makes the read tracked. */
    optIn: boolean,
    private readonly tracked: () => boolean,
    pttlCount: number,
  ) {
    this.cachingOk = !optIn;
    this.pttls = new Array(pttlCount);
    this.pttlLeft = pttlCount;
  }

  /** Writes CACHING YES (opt-in), the read and the PTTLs, contiguously. */
  send(conn: RequestConnection, keyArgs: readonly unknown[], deadline: number): void {
    if (!this.cachingOk) conn.submit(CACHING_YES, new CachingSink(this));
    const read = new ReadSink(this);
    read.deadline = deadline;
    conn.submit(this.encoded, read);
    for (let i = 0; i < keyArgs.length; i++) conn.submit(encodeCommand('PTTL', [keyArgs[i]]) as Encoded, new PttlSink(this, i));
    if (keyArgs.length === 0) this.pttlLeft = 0;
  }

  onCaching(ok: boolean): void {
    this.cachingOk = ok;
  }

  onReply(reply: unknown): void {
    if (this.done) return;
    const value = keepable(reply);
    this.value = value;
    this.ok = true;
    this.deliver(value);
    if (this.pttlLeft === 0) this.finish();
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    for (const p of this.parts) this.node.complete(p, undefined, false, undefined);
    if (this.fallback !== undefined && this.fallback(err, this)) return;
    this.rejectAll(err);
  }

  onPttl(index: number, reply: unknown): void {
    this.pttls[index] = reply;
    if (--this.pttlLeft === 0 && this.ok) this.finish();
  }

  /** The reply to every caller of every part. */
  deliver(value: unknown): void {
    const parts = this.parts;
    for (let i = 0; i < parts.length; i++) {
      const v = this.perKey ? (Array.isArray(value) ? value[i] : null) : value;
      const waiters = parts[i]!.waiters;
      for (let w = 0; w < waiters.length; w++) waiters[w]!.resolveReply(v);
    }
  }

  rejectAll(err: Error): void {
    for (const p of this.parts) for (const w of p.waiters) w.rejectReply(err);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const keep = this.cachingOk && this.tracked();
    const parts = this.parts;
    for (let i = 0; i < parts.length; i++) {
      const v = this.perKey ? (this.value as unknown[])[i] : this.value;
      this.node.complete(parts[i]!, v, keep && (!this.perKey || Array.isArray(this.value)), this.perKey ? [this.pttls[i]] : this.pttls);
    }
  }
}

class CachingSink implements ReplySink {
  readonly command = 'CLIENT';
  readonly returnBuffers = false;
  deadline = 0;
  settled = false;
  constructor(private readonly req: CachedRequest) {}
  resolveReply(): void {
    if (this.settled) return;
    this.settled = true;
    this.req.onCaching(true);
  }
  rejectReply(): void {
    if (this.settled) return;
    this.settled = true;
    this.req.onCaching(false);
  }
}

/**
 * A sink that decodes as its request asks and settles once: the read itself, and (in the routing
 * layer) the same read sent again through a router.
 */
export abstract class RequestSink implements ReplySink {
  deadline = 0;
  settled = false;
  constructor(protected readonly req: CachedRequest) {}
  get command(): string { return this.req.command; }
  get returnBuffers(): boolean { return this.req.returnBuffers; }
  get bigInt(): boolean | undefined { return this.req.bigInt; }
  get resp3(): boolean | undefined { return this.req.resp3; }
  resolveReply(reply: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.onReply(reply);
  }
  rejectReply(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.onError(err);
  }
  protected abstract onReply(reply: unknown): void;
  protected abstract onError(err: Error): void;
}

class ReadSink extends RequestSink {
  protected onReply(reply: unknown): void { this.req.onReply(reply); }
  protected onError(err: Error): void { this.req.onError(err); }
}

class PttlSink implements ReplySink {
  readonly command = 'PTTL';
  readonly returnBuffers = false;
  readonly bigInt = false;
  deadline = 0;
  settled = false;
  constructor(private readonly req: CachedRequest, private readonly index: number) {}
  resolveReply(reply: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.req.onPttl(this.index, reply);
  }
  rejectReply(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.req.onPttl(this.index, err);
  }
}

/**
 * Stands for one caller position of an MGET assembled from hits, shared reads and a request:
 * fills its slot, and settles the caller's sink once every position is known.
 */
export class MgetAssembly {
  private left: number;
  private failed = false;
  constructor(readonly sink: ReplySink, readonly values: unknown[], missing: number) {
    this.left = missing;
    if (missing === 0) sink.resolveReply(values);
  }
  position(i: number): ReplySink {
    return new MgetPosition(this, i);
  }
  fill(i: number, v: unknown): void {
    if (this.failed) return;
    this.values[i] = v;
    if (--this.left === 0) this.sink.resolveReply(this.values);
  }
  fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.sink.rejectReply(err);
  }
}

class MgetPosition implements ReplySink {
  deadline = 0;
  settled = false;
  constructor(private readonly whole: MgetAssembly, private readonly index: number) {}
  get command(): string { return this.whole.sink.command; }
  get returnBuffers(): boolean { return this.whole.sink.returnBuffers; }
  resolveReply(reply: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.whole.fill(this.index, reply);
  }
  rejectReply(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.whole.fail(err);
  }
}
