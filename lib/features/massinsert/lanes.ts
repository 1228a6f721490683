/**
 * replies: 'off' on a cluster or shard set: massInsert's own connection per master, under
 * CLIENT REPLY OFF, and the routing of commands to them by slot.
 */
import type { Connection } from '../../connection/connection.js';
import { kSubmitUnanswered } from '../../base/internal.js';
import type { EventLoop } from '../../core/eventloop.js';
import type { SlotRouter } from '../../routing/router.js';
import { openLike } from '../../routing/targets.js';

/** Written by hand: encodeCommand refuses it on purpose (the connection here is massInsert's own). */
export const REPLY_OFF = '*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n';

/**
 * replies: 'off' on a cluster or shard set. CLIENT REPLY is the state of one connection, and a
 * router's connections are shared (and it would follow replies that never come), so each
 * master gets a connection of massInsert's own, and commands are routed to them by slot here.
 */
export class Lanes {
  private readonly own = new Map<Connection, Connection>();
  constructor(private readonly loop: EventLoop, private readonly router: SlotRouter) {}

  async open(): Promise<void> {
    for (const m of this.router.masterConnections) {
      this.own.set(m, openLike(m, { reconnect: false, readOnly: false }));
    }
    await Promise.all(this.connections.map((c) => this.loop.sendCommand(c, 'PING')));
    for (const c of this.connections) c[kSubmitUnanswered](REPLY_OFF);
  }

  /** massInsert's connection to the master of `key`; undefined if that master is new since the start. */
  laneFor(key: unknown): Connection | undefined {
    return this.own.get(this.router.connectionFor(key as string | Buffer));
  }

  get connections(): Connection[] {
    return [...this.own.values()];
  }
}
