/**
 * Arguments of RESP requests that RespRequestFramer has already checked: just enough decoding
 * for a router to find each command's key. The arguments are views into the input (no copy),
 * and each command's bytes go to its node as they came.
 */

const CR = 0x0d;

/**
 * Calls `each(command, args)` for the `count` commands in `bytes` (a FramedBatch: whole,
 * well-formed arrays of bulk strings, so no check is repeated here). `command` is the
 * command's own bytes, `args[0]` its name.
 */
export function forEachRequest(bytes: Buffer, count: number, each: (command: Buffer, args: Buffer[]) => void): void {
  let pos = 0;
  for (let c = 0; c < count; c++) {
    const start = pos;
    pos++; // '*'
    let n = 0;
    while (bytes[pos] !== CR) n = n * 10 + bytes[pos++]! - 0x30;
    pos += 2;
    const args = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) {
      pos++; // '$'
      let len = 0;
      while (bytes[pos] !== CR) len = len * 10 + bytes[pos++]! - 0x30;
      pos += 2;
      args[i] = bytes.subarray(pos, pos + len);
      pos += len + 2;
    }
    each(bytes.subarray(start, pos), args);
  }
}
