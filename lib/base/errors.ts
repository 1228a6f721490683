/**
 * Every error redloop raises is a class of this file with a stable `name` and `code`, so
 * callers can branch on `err instanceof X`, `err.name` or `err.code` without parsing messages.
 * This file also owns the classification the layers ask about (isRedirect, isRetryable,
 * isUnwritten, isTransientHandshakeError): each list of server codes is written here once.
 */

/** Base class: everything redloop throws or rejects with extends this (TypeErrors aside). */
export class RedloopError extends Error {
  override name = 'RedloopError';
  /** Stable, for programs: REDLOOP_... for redloop's own errors; the server's code for a ReplyError. */
  readonly code: string = 'REDLOOP_ERROR';
}

/** The server answered the command with an error reply (`-ERR ...`, `-WRONGTYPE ...`). */
export class ReplyError extends RedloopError {
  override name = 'ReplyError';
  /** First word of the server's message: ERR, WRONGTYPE, MOVED, ASK, NOAUTH... */
  override readonly code: string;
  /**
   * The name of the command the error answers, upper-cased (`'INCR'` however it was typed); for
   * an error nested in a reply (EXEC, EVAL), the command whose reply holds it.
   */
  readonly command: string;
  constructor(serverMessage: string, command: string) {
    super(serverMessage);
    const space = serverMessage.indexOf(' ');
    this.code = space === -1 ? serverMessage : serverMessage.slice(0, space);
    this.command = command.toUpperCase();
  }
}

/**
 * The connection went away while the command was queued or in flight, or was down when it
 * was sent (offline queue off, or failing fast after failed reconnects). `written` tells
 * whether its bytes had been handed to the socket: if so it may have run on the server, and
 * redloop never re-sends it on its own; if not, sending it again is safe.
 */
export class ConnectionClosedError extends RedloopError {
  override name = 'ConnectionClosedError';
  override readonly code: string = 'REDLOOP_CONNECTION_CLOSED';
  readonly written: boolean;
  readonly command: string;
  constructor(message: string, command: string, written: boolean) {
    super(written
      ? `${command}: ${message}; the command had been written and may have run on the server`
      : `${command}: ${message}; the command was never written`);
    this.written = written;
    this.command = command;
  }
}

/** An error's message without the "was never written" / "may have run" ending, to quote it inside another. */
export function withoutWrittenNote(err: Error): string {
  return err.message.replace(/; the command (was never written|had been written and may have run on the server)$/, '');
}

/** A command (or a connection attempt) did not complete within its time limit. */
export class TimeoutError extends RedloopError {
  override name = 'TimeoutError';
  override readonly code: string = 'REDLOOP_TIMEOUT';
}

/** The server sent bytes that are not RESP; the connection is destroyed and rebuilt. */
export class ProtocolError extends RedloopError {
  override name = 'ProtocolError';
  override readonly code: string = 'REDLOOP_PROTOCOL';
}

/** AUTH, SELECT or CLIENT SETNAME failed during the handshake; redloop does not retry. */
export class AuthError extends RedloopError {
  override name = 'AuthError';
  override readonly code: string = 'REDLOOP_AUTH';
}

/** A command could not be queued: the loop or connection is closed, or a queue is full. */
export class ClientStateError extends RedloopError {
  override name = 'ClientStateError';
  override readonly code: string = 'REDLOOP_CLIENT_STATE';
}

/** Options or a URL that cannot be used; thrown synchronously from connect(). */
export class ConfigError extends RedloopError {
  override name = 'ConfigError';
  override readonly code: string = 'REDLOOP_CONFIG';
}

/**
 * A cluster or shard set cannot route the command: its keys span hash slots (and it is not
 * one that redloop splits), it has no key where one is needed, or it needs a connection of its
 * own (blocking commands, MULTI/WATCH). Raised before anything is written.
 */
export class RoutingError extends RedloopError {
  override name = 'RoutingError';
  override readonly code: string = 'REDLOOP_ROUTING';
}

/**
 * EXEC answered EXECABORT: a command of the block was refused while it was queued (unknown
 * command, wrong arity, OOM...), so nothing of the block ran. `queuedErrors` holds, at the
 * position of each command of the block, the error the server gave it (undefined where the
 * command was queued fine). Fix the command that failed and send the block again.
 */
export class ExecAbortError extends ReplyError {
  override name = 'ExecAbortError';
  readonly queuedErrors: ReadonlyArray<ReplyError | undefined>;
  constructor(serverMessage: string, queuedErrors: ReadonlyArray<ReplyError | undefined>) {
    const first = queuedErrors.findIndex((e) => e !== undefined);
    super(first === -1 ? serverMessage : `${serverMessage} (command ${first} of the block, ${queuedErrors[first]!.command}: ${queuedErrors[first]!.message})`, 'EXEC');
    this.queuedErrors = queuedErrors;
  }
}

/**
 * loop.transaction(): EXEC answered null (a WATCHed key changed) on every attempt, up to the
 * limit. Raise maxAttempts, or shorten the time between WATCH and EXEC if keys are this hot.
 */
export class TransactionRetryError extends RedloopError {
  override name = 'TransactionRetryError';
  override readonly code: string = 'REDLOOP_TRANSACTION_RETRY';
  readonly attempts: number;
  constructor(attempts: number) {
    super(`transaction: a writer outside this loop changed a WATCHed key before EXEC on all ${attempts} attempts (maxAttempts); raise maxAttempts or keep the time between WATCH and EXEC short`);
    this.attempts = attempts;
  }
}

/** The input is not what it claims to be; `offset` (bytes) or `line` says where. */
export class MalformedInputError extends RedloopError {
  override name = 'MalformedInputError';
  override readonly code: string = 'REDLOOP_MALFORMED_INPUT';
  /** Byte offset of the first bad byte (RESP input). */
  readonly offset: number | undefined;
  /** 1-based line of the first bad line (text input). */
  readonly line: number | undefined;
  constructor(message: string, where: { offset?: number; line?: number }) {
    super(message);
    this.offset = where.offset;
    this.line = where.line;
  }
}

export interface MassInsertFailure {
  /** 0-based position of the command in the source. */
  index: number;
  /** The error's class: ReplyError (the server said no), TypeError (bad arguments, never sent), ConnectionClosedError... */
  name: string;
  message: string;
}

export interface MassInsertReport {
  /** Commands written to the server. */
  sent: number;
  /** Replies read (error replies included; 0 with replies: 'off'). */
  replies: number;
  errors: {
    /** Every failure, listed or not. */
    count: number;
    /** The first `maxErrors` failures by command index. */
    first: MassInsertFailure[];
  };
  elapsedMs: number;
  /** 'off' when the server sent no replies, so its errors are not in `errors`. */
  replyMode: 'on' | 'off';
  /** RESP input: bytes read from the source. */
  bytesIn?: number;
  /**
   * Cluster targets: redirections followed during the load (each command was sent again to
   * the node the reply named). These are the cluster's own counters, so commands that others
   * sent on the same cluster meanwhile count too.
   */
  redirections?: { moved: number; ask: number; tryAgain: number };
}

/**
 * massInsert stopped before the end of its source: the source failed (its own error, or
 * malformed input), the connection was closed for good, or the timeout passed. `cause` says
 * which; `report` counts what was sent and answered until then (every reply to what was sent
 * has been read, except after a timeout).
 */
export class MassInsertError extends RedloopError {
  override name = 'MassInsertError';
  override readonly code: string = 'REDLOOP_MASS_INSERT';
  readonly report: MassInsertReport;
  constructor(message: string, report: MassInsertReport, cause: Error) {
    super(message, { cause });
    this.report = report;
  }
}

/** `redloop pipe` was called with arguments it cannot use; the message says which. */
export class UsageError extends RedloopError {
  override name = 'UsageError';
  override readonly code: string = 'REDLOOP_USAGE';
}

// ---------------------------------------------------------------- classification

/**
 * Server codes that say "not here" (MOVED, ASK: another node serves the slot) or "not now"
 * (TRYAGAIN: keys of a multi-key command are mid-migration; CLUSTERDOWN: the cluster cannot
 * serve the slot yet). In every case the command did not run, and a cluster sends it again.
 */
const REDIRECT_CODES: ReadonlySet<string> = new Set(['MOVED', 'ASK', 'TRYAGAIN', 'CLUSTERDOWN']);

/**
 * Server codes that say "not now" for any command: the server is loading its data set
 * (LOADING), its master is down (MASTERDOWN), or, in a cluster, TRYAGAIN and CLUSTERDOWN.
 * The command did not run; the same command later may succeed.
 */
const NOT_NOW_CODES: ReadonlySet<string> = new Set(['LOADING', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN']);

/** A reply that sends the command elsewhere or again (MOVED, ASK, TRYAGAIN, CLUSTERDOWN): it did not run. */
export function isRedirect(err: unknown): err is ReplyError {
  return err instanceof ReplyError && REDIRECT_CODES.has(err.code);
}

/**
 * A failure after which sending the same command again may succeed, for a command that is
 * safe to run twice (a read such as SCAN): the connection went away (written or not), the
 * reply timed out, the connection was closed under it, or the server said "not now"
 * (LOADING, MASTERDOWN, TRYAGAIN, CLUSTERDOWN). A command that must not run twice asks
 * isUnwritten() instead.
 */
export function isRetryable(err: unknown): boolean {
  return err instanceof ConnectionClosedError || err instanceof TimeoutError || err instanceof ClientStateError
    || (err instanceof ReplyError && NOT_NOW_CODES.has(err.code));
}

/**
 * A failure that proves the command never reached a server, so that sending it anywhere is
 * safe: its connection went away before writing it (ConnectionClosedError, written: false) or
 * would not take it (ClientStateError: closed, closing or full).
 */
export function isUnwritten(err: unknown): boolean {
  return (err instanceof ConnectionClosedError && !err.written) || err instanceof ClientStateError;
}

/**
 * A handshake step's error reply that says "not now" rather than "never": the server is
 * loading, busy with a script (BUSY), has no master, is a cluster not ready, or has no room
 * for another client. The connection retries; any other error fails it for good.
 */
export function isTransientHandshakeError(err: ReplyError): boolean {
  return NOT_NOW_CODES.has(err.code) || err.code === 'BUSY' || /max(imum)? number of clients reached/i.test(err.message);
}
