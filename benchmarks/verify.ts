// Every contestant checks its replies with these helpers, so no one wins by skipping work
// and everyone pays the same for the checks.

export class VerificationError extends Error {
  override name = 'VerificationError';
}

export function fail(what: string, index: number, got: unknown, expected: unknown): never {
  const shown = typeof got === 'string' && got.length > 60 ? `${got.slice(0, 60)}...` : JSON.stringify(got);
  throw new VerificationError(`${what}: reply #${index} was ${shown}, expected ${JSON.stringify(expected)}`);
}

/** Every reply equals `expected` (e.g. 'PONG', 'OK'). */
export function expectEvery(replies: ArrayLike<unknown>, expected: unknown, what: string): void {
  for (let i = 0; i < replies.length; i++) {
    if (replies[i] !== expected) fail(what, i, replies[i], expected);
  }
}

export function expectCount(got: number, expected: number, what: string): void {
  if (got !== expected) throw new VerificationError(`${what}: ${got} replies, expected ${expected}`);
}

export const SUNION_SIZE = 1500;

/**
 * SUNION set1 set2 must hold 0..1499: the length of every reply is checked, and the members
 * of every 50th reply, the same sample for every contestant.
 */
export function checkSunion(reply: unknown, index: number): void {
  if (!Array.isArray(reply) || reply.length !== SUNION_SIZE) {
    fail('SUNION set1 set2', index, Array.isArray(reply) ? `array of ${reply.length}` : reply, `array of ${SUNION_SIZE}`);
  }
  if (index % 50 === 0) {
    const seen = new Uint8Array(SUNION_SIZE);
    for (const member of reply as unknown[]) {
      const n = Number(typeof member === 'string' ? member : String(member));
      if (!(n >= 0 && n < SUNION_SIZE) || seen[n]) fail('SUNION set1 set2 member', index, member, `a unique integer in 0..${SUNION_SIZE - 1}`);
      seen[n] = 1;
    }
  }
}

/** Keys and values of the set/get workload: small, and the value carries the run's nonce. */
export function setgetKey(i: number): string {
  return `k:${i}`;
}

export function setgetValue(nonce: string, i: number): string {
  return `${nonce}:${i}`;
}

/** ioredis pipeline().exec() results: no error, and each reply passes `check`. */
export function checkPipelineResults(results: [Error | null, unknown][] | null, check: string | ((reply: unknown, i: number) => void), what: string): number {
  if (!results) throw new VerificationError(`${what}: pipeline returned null`);
  for (let i = 0; i < results.length; i++) {
    const [err, reply] = results[i]!;
    if (err) throw err;
    if (typeof check === 'function') check(reply, i);
    else if (reply !== check) fail(what, i, reply, check);
  }
  return results.length;
}
