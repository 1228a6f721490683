/**
 * What the layers above the connection need from the EventLoop that owns them, typed once
 * (it was an untyped `emit(string, ...unknown[])` in each of them). Connections a layer opens
 * for itself (a cluster's nodes, a subscription's, a lending pool's) go through kConnect with an
 * observer, so that layer hears of its own connections only, not of every one of the loop.
 * core/loop-port.ts adds what the features need on top (send, the unobserved-error report).
 */
import type { Connection, ConnectionObserver } from '../connection/connection.js';
import type { ConnectionOptions } from '../base/options.js';
import type { kConnect } from '../base/internal.js';
import type { SlotRouter } from './router.js';

export interface LoopPort {
  /** Opens a connection of this loop; `observer` is told of that connection's lifecycle. */
  [kConnect](options: string | ConnectionOptions, observer: ConnectionObserver | undefined): Connection;
  /** A cluster's slot map changed (the loop's 'topology' event). */
  emit(event: 'topology', router: SlotRouter): boolean;
  /** An error no listener of the layer's own took (the loop's 'error' event). */
  emit(event: 'error', err: Error, conn: Connection): boolean;
  /** True once close() or disconnect() was called: connections a layer owns close with the loop. */
  readonly isClosed: boolean;
}
