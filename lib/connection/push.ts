/**
 * RESP3 push frames (`>`): what the server sends unasked (invalidations, pub/sub messages). They
 * never enter the reply FIFO; a connection hands each one to its push-mode handler (a pub/sub
 * subscriber's own connection) or else to every listener registered here (the client-side cache).
 * Internal plumbing: reached through the symbol, not a public method.
 */

/** Hears a push frame, in RESP2 shapes (`['invalidate', ['key']]`), with the connection it came on. */
export type PushListener = (frame: unknown[], conn: unknown) => void;

/** `conn[kAddPushListener](listener)` registers a listener and returns the function that removes it. */
export const kAddPushListener: unique symbol = Symbol('redloop.addPushListener');
