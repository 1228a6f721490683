/**
 * Which commands the cache may answer, and which keys a command writes, as the server's own
 * COMMAND reply says (flags, tips, ACL categories and key specs). The command table itself is
 * the routing layer's (routing/commands.ts); the cache sees it through this interface, and
 * these flag bits are the same as routing's CommandFlag (a test checks it).
 */

export const FLAG_READONLY = 1;
export const FLAG_WRITE = 2;
export const FLAG_BLOCKING = 4;
/** The `nondeterministic_output` tip: TIME, RANDOMKEY, SRANDMEMBER, TTL, PTTL... */
export const FLAG_NONDETERMINISTIC = 32;
/** The `@scripting` category: EVAL, EVAL_RO, FCALL_RO... (their reply depends on the script). */
export const FLAG_SCRIPTING = 64;

export interface CommandInfoLike {
  /** Lower-case, `container|sub` for subcommands. */
  readonly name: string;
  readonly flags: number;
  /** Exactly one key, always argv[1] (GET, SET, INCR...). */
  readonly firstArgIsTheKey: boolean;
}

export interface CommandClassifier {
  lookup(name: string, args: ArrayLike<unknown>, from: number): CommandInfoLike | undefined;
  /** Indices into `args` of the command's keys. */
  keyIndices(info: CommandInfoLike, args: ArrayLike<unknown>, from: number): number[];
}

/**
 * The indices of a cacheable read's keys, or why it cannot be cached: `refusal` (the command's
 * own reason, found by the caller) or, failing that, no key in this call.
 */
export function cacheableKeys(table: CommandClassifier, info: CommandInfoLike | undefined, refusal: string | undefined, args: ArrayLike<unknown>, from: number): number[] | string {
  if (refusal !== undefined) return refusal;
  const keyIdx = table.keyIndices(info!, args, from);
  if (keyIdx.length === 0) return `${info!.name.toUpperCase()} cannot be cached: it has no keys in this call (only reads of keys are cacheable)`;
  return keyIdx;
}

/** Why `{ cache }` cannot apply to this command, or undefined when it is cacheable (keys aside). */
export function uncacheableReason(info: CommandInfoLike | undefined, name: string): string | undefined {
  const upper = typeof name === 'string' ? name.toUpperCase() : String(name);
  if (info === undefined) return `${upper} cannot be cached: the server does not list it in COMMAND`;
  const f = info.flags;
  const what = info.name.toUpperCase().replace('|', ' ');
  if ((f & FLAG_WRITE) !== 0 || (f & FLAG_READONLY) === 0) return `${what} cannot be cached: it is not a read-only command (only read-only commands with keys are)`;
  if ((f & FLAG_BLOCKING) !== 0) return `${what} cannot be cached: it is a blocking command`;
  if ((f & FLAG_SCRIPTING) !== 0) return `${what} cannot be cached: a script's reply depends on more than its keys`;
  if ((f & FLAG_NONDETERMINISTIC) !== 0) return `${what} cannot be cached: its reply is not determined by its keys alone (the server marks it nondeterministic_output)`;
  return undefined;
}

/**
 * What an uncached command means for the cache: 'keys' when it may write the keys at `keys`
 * (write commands, and scripts, which may write the keys they declare), 'all' for a write
 * without keys (FLUSHALL, FLUSHDB, SWAPDB...), 'none' otherwise.
 */
export function writeEffect(info: CommandInfoLike | undefined): 'keys' | 'all' | 'none' {
  if (info === undefined) return 'none';
  if ((info.flags & (FLAG_WRITE | FLAG_SCRIPTING)) === 0) return 'none';
  return 'keys';
}
