/**
 * What the features (batch, the lending pool, transactions, scripts, multi) need from the
 * EventLoop: the routing layer's LoopPort, plus sending a command and reporting a failure nobody
 * awaited. The EventLoop implements it; features take it instead of importing the loop.
 */
import type { CommandTarget } from '../connection/target.js';
import type { Arg } from '../protocol/encoder.js';
import type { LoopPort } from '../routing/loop-port.js';
import type { Future, UnobservedErrorSink } from './future.js';

export interface FeatureLoop extends LoopPort, UnobservedErrorSink {
  send<T = any>(target: CommandTarget, command: readonly [string, ...Arg[]], options?: { timeout?: number; returnBuffers?: boolean; bigInt?: boolean; resp3?: boolean }): Future<T>;
}
