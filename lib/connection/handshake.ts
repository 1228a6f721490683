/**
 * The handshake: the commands a new socket sends before it is ready (AUTH, SELECT, CLIENT
 * SETNAME, READONLY), and what a failed step means: "not now" (retry with the next socket) or
 * "never" (close for good with an AuthError).
 */
import { AuthError, isTransientHandshakeError, ReplyError } from '../base/errors.js';
import type { ResolvedOptions } from '../base/options.js';

/** The steps a socket opened with these options sends, in order; none for a bare connection. */
export function handshakeSteps(o: ResolvedOptions): string[][] {
  const steps: string[][] = [];
  if (o.password !== undefined) {
    const password = o.password.reveal();
    steps.push(o.username !== undefined ? ['AUTH', o.username, password] : ['AUTH', password]);
  }
  if (o.db !== 0) steps.push(['SELECT', String(o.db)]);
  if (o.name !== undefined) steps.push(['CLIENT', 'SETNAME', o.name]);
  if (o.readOnly) steps.push(['READONLY']);
  return steps;
}

/**
 * What a step's error reply means: a ReplyError to retry with (the socket is dropped, the
 * connection reconnects) or an AuthError to close for good. The server's text never contains
 * the password; ours must not either.
 */
export function handshakeFailure(step: string, err: ReplyError, o: ResolvedOptions, address: string): { retry: ReplyError } | { fatal: AuthError } {
  const what = step === 'AUTH' ? 'authentication' : step === 'SELECT' ? `SELECT ${o.db}` : step === 'CLIENT' ? 'CLIENT SETNAME' : step;
  // Starting up, busy or full: a later attempt can succeed, so this one just fails.
  if (isTransientHandshakeError(err)) return { retry: new ReplyError(`${what} on ${address} failed for now, will retry: ${err.message}`, err.command) };
  return { fatal: new AuthError(`${what} failed on ${address}: ${err.message}`) };
}
