/**
 * Keys of the methods that the layers call on each other and a user must not: writing a tick's
 * commands, writing with no reply expected, push mode... They are symbols, so they are not in a
 * class's public surface (nor reachable by a string such as conn['flush']), and only code that
 * imports this module (redloop's own layers; lib/index.ts does not export it) can call them.
 */

/** Connection: writes what this tick queued (called by the loop's end-of-tick flush). */
export const kFlush: unique symbol = Symbol('redloop.flush');
/** Connection: writes a command the server will not answer (CLIENT REPLY OFF/SKIP, pub/sub), with no reply queue entry. */
export const kSubmitUnanswered: unique symbol = Symbol('redloop.submitUnanswered');
/** Connection: push mode (pub/sub's own connection): replies nobody waits for go to a handler. */
export const kSetPushHandler: unique symbol = Symbol('redloop.setPushHandler');
/** Connection: stops or resumes reading the socket (a push consumer that falls behind). */
export const kSetReading: unique symbol = Symbol('redloop.setReading');
/** Connection: writes what is queued now, not at the tick's end (SCAN's next call, sent early). */
export const kWriteNow: unique symbol = Symbol('redloop.writeNow');
/**
 * Connection: `conn[kAddPushListener](listener)` hears every RESP3 push frame (`>`) that no
 * push-mode handler takes (invalidations, for the client-side cache); returns its remover.
 */
export const kAddPushListener: unique symbol = Symbol('redloop.addPushListener');
/** CommandTarget: a command sent with its own timeout timed out (resetOnTimeout applies). */
export const kCommandTimedOut: unique symbol = Symbol('redloop.commandTimedOut');
/** EventLoop: opens a connection for a layer, with a ConnectionObserver told of that connection's lifecycle only. */
export const kConnect: unique symbol = Symbol('redloop.connect');
/** ConnectionOwner: flush this connection at the end of the tick (with every other dirty one). */
export const kScheduleFlush: unique symbol = Symbol('redloop.scheduleFlush');
/** SlotRouter: the index of a command's first key when it has one place, or why not (massInsert). */
export const kKeyOf: unique symbol = Symbol('redloop.keyOf');
/** SlotRouter: the one slot of a MULTI block's keys, or the RoutingError that says why not. */
export const kBlockSlot: unique symbol = Symbol('redloop.blockSlot');
/** SlotRouter: submits a checked MULTI block, whole, to the owner of its slot. */
export const kSubmitBlock: unique symbol = Symbol('redloop.submitBlock');
/** SlotRouter: sends a command of a known slot again (one that came back redirected or unwritten). */
export const kSubmitToSlot: unique symbol = Symbol('redloop.submitToSlot');
/** Cluster: watches the slot map (pub/sub's sharded channels follow it); returns the function that stops watching. */
export const kWatchTopology: unique symbol = Symbol('redloop.watchTopology');
/** Connection, Cluster, ShardSet: the target's client-side cache front (lib/cache), undefined when it has none. */
export const kCacheFront: unique symbol = Symbol('redloop.cacheFront');
