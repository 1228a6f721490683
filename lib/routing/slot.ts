/**
 * Hash slots exactly as Redis computes them (CRC16/XMODEM of the key, or of its hash tag,
 * modulo 16384), computed by cluster-key-slot. This file owns one case of the hash-tag rule,
 * because cluster-key-slot 1.1.x disagrees with the server when the first `{` is followed at
 * once by `}`: for `foo{}{bar}` Redis hashes the whole key, cluster-key-slot a later tag.
 */
import calculateSlot from 'cluster-key-slot';

export const SLOT_COUNT = 16384;

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }

/**
 * The slot of a key given as a string, Buffer/Uint8Array, number or bigint (numbers hash as
 * the decimal text the encoder sends).
 */
export function keySlot(key: unknown): number {
  if (typeof key === 'string') return stringSlot(key);
  if (key instanceof Uint8Array) return bytesSlot(Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength));
  return stringSlot(String(key));
}

/**
 * Most keys are short ASCII strings: cluster-key-slot hashes them as they are. Others go as the
 * bytes the encoder sends (UTF-8, lone surrogates replaced as Buffer.from does).
 */
function stringSlot(key: string): number {
  let open = -1;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c > 127) return bytesSlot(Buffer.from(key));
    if (c === OPEN && open === -1) open = i;
  }
  if (open !== -1 && key.charCodeAt(open + 1) === CLOSE) return wholeKeySlot(Buffer.from(key, 'latin1'));
  return calculateSlot(key);
}

function bytesSlot(key: Buffer): number {
  const open = key.indexOf(OPEN);
  if (open !== -1 && key[open + 1] === CLOSE) return wholeKeySlot(key);
  return calculateSlot(key);
}

/**
 * The slot of a key whose first `{` is followed at once by `}`: Redis hashes the whole key,
 * cluster-key-slot would hash a later tag. CRC16/XMODEM is linear (initial value 0, no final
 * xor), so the CRC of the key is the CRC of the key with every `{` zeroed XOR the CRC of the
 * `{` bytes alone (zeros elsewhere); neither holds a `{...}` tag, so cluster-key-slot hashes
 * each whole, and the slot (the low 14 bits) XORs the same way.
 */
function wholeKeySlot(key: Uint8Array): number {
  const withoutOpen = Buffer.from(key);
  const openOnly = Buffer.alloc(key.length);
  for (let i = 0; i < key.length; i++) {
    if (key[i] === OPEN) {
      withoutOpen[i] = 0;
      openOnly[i] = OPEN;
    }
  }
  return calculateSlot(withoutOpen) ^ calculateSlot(openOnly);
}
