/**
 * Targets that stand for one server at a time, a server that may change (a sentinel-watched
 * master). Commands sent through such a target follow it; a feature that needs the server's
 * connection itself (a lending pool, a mass insertion) asks for the one serving now.
 */
import type { Connection } from './connection.js';

export const currentConnection: unique symbol = Symbol('redloop.currentConnection');

export interface MovingTarget {
  /** The connection to the server that serves now, once it is known (and checked). */
  [currentConnection](): Promise<Connection>;
}

export function isMovingTarget(target: unknown): target is MovingTarget {
  return target !== null && typeof target === 'object' && typeof (target as Partial<MovingTarget>)[currentConnection] === 'function';
}
