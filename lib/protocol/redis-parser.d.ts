// Minimal typings for redis-parser 3 (it ships none).
declare module 'redis-parser' {
  interface ParserOptions {
    returnReply(reply: unknown): void;
    returnError(err: Error): void;
    returnFatalError?(err: Error): void;
    returnBuffers?: boolean;
    stringNumbers?: boolean;
  }
  class RedisParser {
    constructor(options: ParserOptions);
    optionReturnBuffers: boolean;
    execute(chunk: Buffer): void;
    setReturnBuffers(on: boolean): void;
    setStringNumbers(on: boolean): void;
    reset(): void;
  }
  export = RedisParser;
}
