/**
 * Reply decoder: a thin wrapper around redis-parser (the fastest pure-JS RESP2 parser),
 * turning its callbacks into one small interface and its fatal errors into ProtocolError.
 */
import RedisParser from 'redis-parser';
import { ProtocolError } from '../errors.js';

export interface ReplyHandler {
  /** A complete reply (string, number, null, Buffer, or nested array of those). */
  onReply(reply: unknown): void;
  /** A top-level error reply; `message` is the server's text. */
  onErrorReply(message: string): void;
  /** The stream is not RESP; the decoder must be reset and the connection dropped. */
  onProtocolError(err: ProtocolError): void;
}

export class ReplyDecoder {
  private readonly parser: RedisParser;

  constructor(handler: ReplyHandler, returnBuffers = false) {
    this.parser = new RedisParser({
      returnReply: (reply) => handler.onReply(reply),
      returnError: (err) => handler.onErrorReply(err.message),
      returnFatalError: (err) =>
        handler.onProtocolError(new ProtocolError(`server sent bytes that are not RESP: ${err.message}`)),
      returnBuffers,
    });
  }

  /** Feeds one chunk from the socket; replies are delivered synchronously, in order. */
  feed(chunk: Buffer): void {
    this.parser.execute(chunk);
  }

  /**
   * Whether bulk/simple strings of the replies parsed next come back as Buffers. redis-parser
   * reads the flag as it parses, so switching between two replies is exact.
   */
  get returnBuffers(): boolean {
    return this.parser.optionReturnBuffers;
  }
  set returnBuffers(on: boolean) {
    this.parser.optionReturnBuffers = on;
  }

  /** Drops any half-parsed reply (after a disconnect). */
  reset(): void {
    this.parser.reset();
  }
}
