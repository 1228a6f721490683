/**
 * Every error redloop raises is a class with a stable `name`, so callers can branch on
 * `err instanceof X` or `err.name` without parsing messages.
 */

/** Base class: everything redloop throws or rejects with extends this (TypeErrors aside). */
export class RedloopError extends Error {
  override name = 'RedloopError';
}

/** The server answered the command with an error reply (`-ERR ...`, `-WRONGTYPE ...`). */
export class ReplyError extends RedloopError {
  override name = 'ReplyError';
  /** First word of the server's message: ERR, WRONGTYPE, MOVED, ASK, NOAUTH... */
  readonly code: string;
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
}

/** The server sent bytes that are not RESP; the connection is destroyed and rebuilt. */
export class ProtocolError extends RedloopError {
  override name = 'ProtocolError';
}

/** AUTH, SELECT or CLIENT SETNAME failed during the handshake; redloop does not retry. */
export class AuthError extends RedloopError {
  override name = 'AuthError';
}

/** A command could not be queued: the loop or connection is closed, or a queue is full. */
export class ClientStateError extends RedloopError {
  override name = 'ClientStateError';
}

/** Options or a URL that cannot be used; thrown synchronously from connect(). */
export class ConfigError extends RedloopError {
  override name = 'ConfigError';
}

/**
 * A cluster or shard set cannot route the command: its keys span hash slots (and it is not
 * one that redloop splits), it has no key where one is needed, or it needs a connection of its
 * own (blocking commands, MULTI/WATCH). Raised before anything is written.
 */
export class RoutingError extends RedloopError {
  override name = 'RoutingError';
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
  readonly attempts: number;
  constructor(attempts: number) {
    super(`transaction: a writer outside this loop changed a WATCHed key before EXEC on all ${attempts} attempts (maxAttempts); raise maxAttempts or keep the time between WATCH and EXEC short`);
    this.attempts = attempts;
  }
}
