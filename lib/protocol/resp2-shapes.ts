/**
 * RESP2 shapes for RESP3 replies. The decoder already gives most RESP3 replies their RESP2 shape
 * (maps flat, sets as arrays, doubles as text, booleans 1/0); what is left are the commands whose
 * RESP3 reply is nested otherwise than their RESP2 one. Each mapping here reads the reply's
 * structure, not the protocol, so it is a no-op on a RESP2 reply and can be applied to any reply
 * of its command (EXEC's elements too). The list comes from test/resp3-differential.test.ts,
 * which runs every command of its corpus over RESP2 and RESP3 and compares.
 */

type Shape = (reply: unknown[]) => unknown;

/** [[a, b], [c, d]] -> [a, b, c, d]: member/score and field/value pairs (WITHSCORES, WITHVALUES). */
const flattenPairs: Shape = (reply) => {
  if (reply.length === 0 || !Array.isArray(reply[0])) return reply;
  const flat: unknown[] = [];
  for (const pair of reply) {
    if (Array.isArray(pair)) for (const x of pair) flat.push(x);
    else flat.push(pair);
  }
  return flat;
};

/** [k, v, k, v] (a RESP3 map, flattened) -> [[k, v], [k, v]] (RESP2's array of pairs): XREAD. */
const pairUp: Shape = (reply) => {
  if (reply.length === 0 || Array.isArray(reply[0])) return reply;
  const pairs = new Array<unknown>(reply.length / 2);
  for (let i = 0; i < pairs.length; i++) pairs[i] = [reply[2 * i], reply[2 * i + 1]];
  return pairs;
};

/** Upper-case command names; lower-case ones are added below. */
const BY_NAME: Record<string, Shape> = {
  ZRANGE: flattenPairs,
  ZRANGEBYSCORE: flattenPairs,
  ZREVRANGE: flattenPairs,
  ZREVRANGEBYSCORE: flattenPairs,
  ZUNION: flattenPairs,
  ZINTER: flattenPairs,
  ZDIFF: flattenPairs,
  ZRANDMEMBER: flattenPairs,
  ZPOPMIN: flattenPairs,
  ZPOPMAX: flattenPairs,
  HRANDFIELD: flattenPairs,
  XREAD: pairUp,
  XREADGROUP: pairUp,
};

/** Every name seen (any case) -> its shape, or null for none: one Map lookup per aggregate reply. */
const known = new Map<string, Shape | null>();
for (const [name, shape] of Object.entries(BY_NAME)) {
  known.set(name, shape);
  known.set(name.toLowerCase(), shape);
}
/** Names are the caller's (any case); bounded so that odd spellings cannot grow it forever. */
const KNOWN_MAX = 4096;

/** Whether `name`'s RESP3 reply needs a mapping to take its RESP2 shape. */
export function hasResp2Shape(name: string): boolean {
  return shapeOf(name) !== null;
}

function shapeOf(name: string): Shape | null {
  let shape = known.get(name);
  if (shape === undefined) {
    shape = BY_NAME[name.toUpperCase()] ?? null;
    if (known.size < KNOWN_MAX) known.set(name, shape);
  }
  return shape;
}

/**
 * The reply of command `name` in its RESP2 shape. Only aggregate replies (arrays) can differ;
 * anything else, and commands that need nothing, come back as they are.
 */
export function toResp2Shape(name: string, reply: unknown, blockNames?: readonly string[]): unknown {
  if (!Array.isArray(reply)) return reply;
  if (blockNames !== undefined) {
    // EXEC: each command's reply as it would be alone.
    for (let i = 0; i < reply.length && i < blockNames.length; i++) reply[i] = toResp2Shape(blockNames[i]!, reply[i]);
    return reply;
  }
  const shape = shapeOf(name);
  return shape === null ? reply : shape(reply);
}
