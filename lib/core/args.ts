/**
 * Compile-time checks of command arguments, so that a mistake reads as what it is. Passing an
 * array where its elements should be separate arguments (`sendCommand(conn, 'DEL', keys)`)
 * fails to compile with "an array is not one argument: spread it", instead of a message about
 * the properties of Uint8Array. Types only: nothing here exists at run time.
 */
import type { Arg } from '../protocol/encoder.js';

/** What a wrong argument is compared with in a compile error: the message says what to do. */
export type NotAnArg<V> = V extends readonly unknown[]
  ? 'an array is not one argument: spread it into separate arguments (...array)'
  : 'an argument must be a string, number, bigint, Buffer or Uint8Array';

/** The arguments as given when each is an Arg; a wrong one becomes its NotAnArg message. */
export type CheckedArgs<A extends readonly unknown[]> = { [K in keyof A]: A[K] extends Arg ? A[K] : NotAnArg<A[K]> };
