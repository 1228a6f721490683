/**
 * Hash slots exactly as Redis computes them (CRC16/XMODEM of the key, or of its hash tag,
 * modulo 16384). cluster-key-slot does the CRC; this file owns the hash-tag rule, because
 * cluster-key-slot 1.1.x disagrees with the server when the first `{` is followed at once by
 * `}`: for `foo{}{bar}` Redis hashes the whole key, cluster-key-slot hashes `}{bar`.
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

function stringSlot(key: string): number {
  const open = key.indexOf('{');
  if (open === -1) return calculateSlot(key);
  const close = key.indexOf('}', open + 1);
  // No `}` after the first `{`: cluster-key-slot hashes the whole key too.
  if (close === -1) return calculateSlot(key);
  // `{` and `}` are ASCII, so string offsets cut the UTF-8 bytes at the same place. The tag
  // holds no `}`, so cluster-key-slot hashes it whole.
  if (close > open + 1) return calculateSlot(key.slice(open + 1, close));
  return crc16(Buffer.from(key)) & (SLOT_COUNT - 1); // empty tag: the whole key, as Redis does
}

function bytesSlot(key: Buffer): number {
  const open = key.indexOf(OPEN);
  if (open === -1) return calculateSlot(key);
  const close = key.indexOf(CLOSE, open + 1);
  if (close === -1) return calculateSlot(key);
  if (close > open + 1) return calculateSlot(key.subarray(open + 1, close));
  return crc16(key) & (SLOT_COUNT - 1);
}

// CRC16/XMODEM (poly 0x1021, init 0), only for the rare keys cluster-key-slot would mis-tag.
const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}
