/**
 * The handshake: the commands a new socket sends before it is ready, in one write (HELLO 3 with
 * AUTH and SETNAME, then SELECT, READONLY; or AUTH, SELECT, CLIENT SETNAME, READONLY in RESP2),
 * and what a failed step means: "speak RESP2" (a server without HELLO), "not now" (retry with the
 * next socket) or "never" (close for good with an AuthError).
 */
import { AuthError, isTransientHandshakeError, ReplyError } from '../base/errors.js';
import type { ResolvedOptions } from '../base/options.js';

/**
 * The steps a socket opened with these options sends, in order; none for a bare RESP2 connection.
 * With `hello`, HELLO 3 carries the credentials and the name, so RESP3 costs no round trip more.
 */
export function handshakeSteps(o: ResolvedOptions, hello = false): string[][] {
  const steps: string[][] = [];
  if (hello) {
    const step = ['HELLO', '3'];
    // HELLO's AUTH always names a user: "default" is the one a password-only AUTH logs in as.
    if (o.password !== undefined) step.push('AUTH', o.username ?? 'default', o.password.reveal());
    if (o.name !== undefined) step.push('SETNAME', o.name);
    steps.push(step);
    if (o.db !== 0) steps.push(['SELECT', String(o.db)]);
    if (o.readOnly) steps.push(['READONLY']);
    return steps;
  }
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
 * Whether HELLO's error means "this server speaks RESP2 only": it does not know HELLO (Redis < 6,
 * or the command renamed away), refuses protocol 3 (NOPROTO), or wants a password we were not
 * given (as before HELLO, the connection is then made and its commands meet NOAUTH until the
 * caller sends AUTH). The handshake is then done again in RESP2, silently.
 */
export function helloRefused(err: ReplyError, o: ResolvedOptions): boolean {
  return /unknown command/i.test(err.message) || err.code === 'NOPROTO' || (err.code === 'NOAUTH' && o.password === undefined);
}

/**
 * What a step's error reply means: a ReplyError to retry with (the socket is dropped, the
 * connection reconnects) or an AuthError to close for good. The server's text never contains
 * the password; ours must not either.
 */
export function handshakeFailure(step: string, err: ReplyError, o: ResolvedOptions, address: string): { retry: ReplyError } | { fatal: AuthError } {
  const what = step === 'AUTH' || (step === 'HELLO' && /^(WRONGPASS|NOAUTH|NOPERM)$/.test(err.code)) ? 'authentication'
    : step === 'SELECT' ? `SELECT ${o.db}` : step === 'CLIENT' ? 'CLIENT SETNAME' : step === 'HELLO' ? 'HELLO 3' : step;
  // Starting up, busy or full: a later attempt can succeed, so this one just fails.
  if (isTransientHandshakeError(err)) return { retry: new ReplyError(`${what} on ${address} failed for now, will retry: ${err.message}`, err.command) };
  return { fatal: new AuthError(`${what} failed on ${address}: ${err.message}`) };
}
