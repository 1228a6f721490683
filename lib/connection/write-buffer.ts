/**
 * The write buffer: commands encoded at call time wait here for one write per tick, or go out
 * in slices when a run is long (see `add`). A command in a written slice is written: it is never
 * sent again, and its failure says so. What is still here when the socket goes away never
 * reached it, and the connection queues it again (`takeUnwritten`).
 */
import type net from 'node:net';
import type { Encoded } from '../protocol/encoder.js';

/**
 * Commands queued in one tick after which they are written at once, without waiting for the tick
 * to end (see `add`): a small slice while the server has nothing else to do, so it starts on
 * them while the caller is still sending; a large one otherwise, to bound what a long burst holds.
 */
const WRITE_SLICE = 256;
const WRITE_SLICE_BEHIND = 4096;

export class WriteBuffer {
  /** Encoded commands waiting for the end-of-tick flush. */
  private out: Encoded[] = [];
  private allStrings = true;
  /** Commands in `out` with no reply queue entry (written with no reply expected). */
  private unanswered = 0;
  /** Commands queued since the last tick flush (written in slices or not). */
  private tickQueued = 0;
  /** The socket being written to (undefined between sockets). */
  socket: net.Socket | undefined = undefined;
  /** Commands handed to a socket, and the writes that carried them. */
  commandsSent = 0;
  writes = 0;

  /** Commands waiting to be written. */
  get length(): number {
    return this.out.length;
  }

  /** Commands waiting to be written that have no reply queue entry. */
  get unansweredCount(): number {
    return this.unanswered;
  }

  /** The exact bytes of what waits to be written (for redloop:write; not on the hot path). */
  byteLength(): number {
    let bytes = 0;
    const out = this.out;
    for (let i = 0; i < out.length; i++) {
      const cmd = out[i]!;
      if (typeof cmd === 'string') bytes += Buffer.byteLength(cmd);
      else for (const piece of cmd) bytes += typeof piece === 'string' ? Buffer.byteLength(piece) : piece.length;
    }
    return bytes;
  }

  /**
   * Bytes queued in this tick plus bytes the socket has buffered. This tick's commands are
   * counted here (in UTF-16 units for strings, close to bytes for ASCII), not on the hot path.
   */
  get bufferedBytes(): number {
    let bytes = this.socket?.writableLength ?? 0;
    const out = this.out;
    for (let i = 0; i < out.length; i++) {
      const cmd = out[i]!;
      if (typeof cmd === 'string') bytes += cmd.length;
      else for (const piece of cmd) bytes += piece.length;
    }
    return bytes;
  }

  /**
   * Queues one command; `owed` is how many replies the reply queue holds before this command's.
   * Returns true when a slice is due: the caller then writes (`write`), so that a long run of
   * commands in one tick goes out as it is produced instead of all at the tick's end.
   *
   * While the server has nothing else to do (no command of an earlier tick awaits its reply, and
   * the socket holds no earlier write) a slice is WRITE_SLICE commands: the server works on the
   * first commands of a window of 1000 while the caller is still sending the rest, so less of the
   * round trip is spent waiting (PING windows of 1000: ~1.8M/s -> ~2.3M/s). A server already busy
   * (a pipeline that keeps commands in flight, as massInsert does) gains nothing from that and
   * would pay the extra writes, so there a slice is WRITE_SLICE_BEHIND, which still keeps a
   * million un-awaited sends from holding more than a slice of encoded strings.
   */
  add(encoded: Encoded, owed: number): boolean {
    const out = this.out;
    out.push(encoded);
    if (typeof encoded !== 'string') this.allStrings = false;
    this.tickQueued++;
    if (out.length < WRITE_SLICE) return false;
    return out.length >= WRITE_SLICE_BEHIND || (owed < this.tickQueued && this.socket!.writableLength === 0);
  }

  /** Queues a command the server will not answer (no reply queue entry); see `add`. */
  addUnanswered(encoded: Encoded, owed: number): boolean {
    const due = this.add(encoded, owed);
    this.unanswered++;
    return due;
  }

  /** The tick ends: the next tick's commands start a new count. */
  endTick(): void {
    this.tickQueued = 0;
  }

  /** Hands what is queued to the socket, in one syscall where it can; false if nothing was written. */
  write(): boolean {
    const out = this.out;
    if (out.length === 0) return false;
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return false; // the close handler takes `out` back
    this.out = [];
    this.commandsSent += out.length;
    this.writes++;
    this.unanswered = 0;
    // A write queued behind another is kept by the stream as it was given: give it bytes, not a
    // rope of thousands of strings that would live until the socket drains (a long burst).
    const behind = socket.writableLength !== 0;
    if (this.allStrings) {
      // += builds a rope V8 flattens once on write: measurably cheaper than join('').
      let text = out[0] as string;
      for (let i = 1; i < out.length; i++) text += out[i] as string;
      socket.write(behind ? Buffer.from(text) : text);
    } else {
      // Buffer arguments: strings still go out joined, Buffers as they are.
      this.allStrings = true;
      socket.cork();
      let text = '';
      for (const cmd of out) {
        if (typeof cmd === 'string') { text += cmd; continue; }
        for (const piece of cmd) {
          if (typeof piece === 'string') { text += piece; continue; }
          if (text !== '') { socket.write(behind ? Buffer.from(text) : text); text = ''; }
          socket.write(piece);
        }
      }
      if (text !== '') socket.write(behind ? Buffer.from(text) : text);
      socket.uncork();
    }
    return true;
  }

  /**
   * The socket is gone: empties the buffer and returns what never reached it, oldest first, and
   * whether unanswered commands were among them (then the others cannot be sent alone again:
   * CLIENT REPLY OFF died with the socket).
   */
  takeUnwritten(): { commands: Encoded[]; withUnanswered: number } {
    const commands = this.out;
    const withUnanswered = this.unanswered;
    this.out = [];
    this.allStrings = true;
    this.unanswered = 0;
    return { commands, withUnanswered };
  }
}
