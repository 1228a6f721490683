/**
 * Which arguments of a command are keys, and what kind of command it is, as the server itself
 * says (the reply of COMMAND: flags and key specifications, Redis 7+). Read once per routed
 * target, so every command the server knows routes correctly, module commands included.
 * Follows the key-spec walk of Redis' getKeysUsingKeySpecs (db.c).
 */

/** Command flags a router needs; bits, so a check costs one AND. */
export const enum CommandFlag {
  ReadOnly = 1,
  Write = 2,
  Blocking = 4,
  PubSub = 8,
  NoScript = 16,
  /** The `nondeterministic_output` tip (TIME, RANDOMKEY, SRANDMEMBER, PTTL...): the client-side cache never keeps these. */
  NondeterministicOutput = 32,
  /** The `@scripting` ACL category (EVAL, FCALL_RO...). */
  Scripting = 64,
}

const FLAG_BITS: Record<string, number> = {
  readonly: CommandFlag.ReadOnly, write: CommandFlag.Write, blocking: CommandFlag.Blocking,
  pubsub: CommandFlag.PubSub, noscript: CommandFlag.NoScript,
};

interface KeySpec {
  /** begin_search: 'index' (argv position), 'keyword' (after a keyword) or 'unknown'. */
  search: 'index' | 'keyword' | 'unknown';
  index: number;
  keyword: string;
  startFrom: number;
  /** find_keys: 'range' or 'keynum' (a count argument says how many keys follow), or 'unknown'. */
  find: 'range' | 'keynum' | 'unknown';
  lastKey: number;
  keyStep: number;
  limit: number;
  keyNumIndex: number;
  firstKey: number;
}

export interface CommandInfo {
  /** Lower-case, `container|sub` for subcommands. */
  readonly name: string;
  readonly arity: number;
  readonly flags: number;
  readonly specs: readonly KeySpec[];
  /** Exactly one key, always argv[1] (GET, SET, INCR...): the fast path. */
  readonly firstArgIsTheKey: boolean;
  readonly subcommands: Map<string, CommandInfo> | undefined;
}

/** A RESP2 map (flat [k, v, k, v]) as a lookup (COMMAND DOCS/INFO, CLUSTER SHARDS). */
export function flatMap(reply: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (!Array.isArray(reply)) return m;
  for (let i = 0; i + 1 < reply.length; i += 2) m.set(String(reply[i]), reply[i + 1]);
  return m;
}

function num(v: unknown, fallback = 0): number {
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

function parseKeySpec(raw: unknown): KeySpec {
  const spec = flatMap(raw);
  const bs = flatMap(spec.get('begin_search'));
  const bsSpec = flatMap(bs.get('spec'));
  const fk = flatMap(spec.get('find_keys'));
  const fkSpec = flatMap(fk.get('spec'));
  const bsType = String(bs.get('type'));
  const fkType = String(fk.get('type'));
  return {
    search: bsType === 'index' || bsType === 'keyword' ? bsType : 'unknown',
    index: num(bsSpec.get('index')),
    keyword: String(bsSpec.get('keyword') ?? '').toUpperCase(),
    startFrom: num(bsSpec.get('startfrom')),
    find: fkType === 'range' || fkType === 'keynum' ? fkType : 'unknown',
    lastKey: num(fkSpec.get('lastkey')),
    keyStep: Math.max(1, num(fkSpec.get('keystep'), 1)),
    limit: num(fkSpec.get('limit')),
    keyNumIndex: num(fkSpec.get('keynumidx')),
    firstKey: num(fkSpec.get('firstkey'), 1),
  };
}

function parseEntry(entry: unknown): CommandInfo | undefined {
  if (!Array.isArray(entry) || entry.length < 6) return undefined;
  const name = String(entry[0]).toLowerCase();
  let flags = 0;
  if (Array.isArray(entry[2])) for (const f of entry[2]) flags |= FLAG_BITS[String(f)] ?? 0;
  if (Array.isArray(entry[6]) && entry[6].some((c) => String(c) === '@scripting')) flags |= CommandFlag.Scripting;
  if (Array.isArray(entry[7]) && entry[7].some((t) => String(t) === 'nondeterministic_output')) flags |= CommandFlag.NondeterministicOutput;
  let specs: KeySpec[];
  if (Array.isArray(entry[8])) {
    specs = entry[8].map(parseKeySpec);
  } else {
    // Before Redis 7 there are no key specs: first key, last key and step (argv positions).
    const first = num(entry[3]);
    const last = num(entry[4]);
    specs = first > 0 ? [{
      search: 'index', index: first, keyword: '', startFrom: 0, find: 'range',
      lastKey: last < 0 ? last : last - first, keyStep: Math.max(1, num(entry[5], 1)), limit: 0, keyNumIndex: 0, firstKey: 1,
    }] : [];
  }
  let subcommands: Map<string, CommandInfo> | undefined;
  if (Array.isArray(entry[9]) && entry[9].length > 0) {
    subcommands = new Map();
    for (const sub of entry[9]) {
      const info = parseEntry(sub);
      if (info !== undefined) subcommands.set(info.name.slice(info.name.indexOf('|') + 1), info);
    }
  }
  const s = specs[0];
  const firstArgIsTheKey = specs.length === 1 && s!.search === 'index' && s!.index === 1 && s!.find === 'range' && s!.lastKey === 0;
  return { name, arity: num(entry[1]), flags, specs, firstArgIsTheKey, subcommands };
}

const MAX_ALIASES = 4096;

export class CommandTable {
  private readonly byName = new Map<string, CommandInfo>();
  /** Names as callers spell them ('get', 'Get', 'GET') to their info, filled on first use. */
  private readonly aliases = new Map<string, CommandInfo | null>();

  /** From the reply to COMMAND (or COMMAND INFO ...). */
  constructor(reply: unknown) {
    if (!Array.isArray(reply)) throw new TypeError('COMMAND reply must be an array');
    for (const entry of reply) {
      const info = parseEntry(entry);
      if (info !== undefined) this.byName.set(info.name, info);
    }
  }

  get size(): number {
    return this.byName.size;
  }

  /**
   * The command's info (the subcommand's, for containers like OBJECT or XINFO), or undefined
   * for a command the server did not list.
   */
  lookup(name: string, args: ArrayLike<unknown>, from: number): CommandInfo | undefined {
    let info = this.aliases.get(name);
    if (info === undefined) {
      info = this.byName.get(name.toLowerCase()) ?? null;
      if (this.aliases.size < MAX_ALIASES) this.aliases.set(name, info);
    }
    if (info === null) return undefined;
    if (info.subcommands !== undefined && from < args.length) {
      const sub = args[from];
      const text = typeof sub === 'string' ? sub : sub instanceof Uint8Array ? Buffer.from(sub).toString('latin1') : '';
      return info.subcommands.get(text.toLowerCase()) ?? info;
    }
    return info;
  }

  /**
   * Indices into `args` of the command's keys, in argument order per key spec. `args[from]`
   * is argv[1] (the first argument after the name). Specs the arguments do not satisfy add no
   * keys (the server will answer with a syntax or arity error).
   */
  keyIndices(info: CommandInfo, args: ArrayLike<unknown>, from: number): number[] {
    const argc = args.length - from + 1; // argv includes the name
    if (info.firstArgIsTheKey) return argc > 1 ? [from] : [];
    const out: number[] = [];
    for (const spec of info.specs) {
      let first = 0;
      if (spec.search === 'index') {
        first = spec.index;
      } else if (spec.search === 'keyword') {
        const start = spec.startFrom > 0 ? spec.startFrom : argc + spec.startFrom;
        const end = spec.startFrom > 0 ? argc - 1 : 0;
        for (let i = start; i !== end; i = start <= end ? i + 1 : i - 1) {
          if (i >= argc || i < 1) break;
          const a = args[from + i - 1];
          if ((typeof a === 'string' || a instanceof Uint8Array) && argUpper(a) === spec.keyword) {
            first = i + 1;
            break;
          }
        }
        if (first === 0) continue;
      } else {
        continue;
      }
      let last: number;
      let step = spec.keyStep;
      if (spec.find === 'range') {
        if (spec.lastKey >= 0) last = first + spec.lastKey;
        else if (spec.limit === 0) last = argc + spec.lastKey;
        else last = first + Math.floor((argc - first) / spec.limit) + spec.lastKey;
      } else if (spec.find === 'keynum') {
        const countAt = first + spec.keyNumIndex;
        if (countAt >= argc) continue;
        const count = Number(argText(args[from + countAt - 1]));
        if (!Number.isInteger(count) || count < 0) continue;
        first += spec.firstKey;
        last = first + count - 1;
      } else {
        continue;
      }
      if (last >= argc || last < first || first >= argc) continue;
      for (let i = first; i <= last; i += step) out.push(from + i - 1);
    }
    return out;
  }
}

function argText(a: unknown): string {
  if (typeof a === 'string') return a;
  if (a instanceof Uint8Array) return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('latin1');
  return String(a);
}

function argUpper(a: string | Uint8Array): string {
  if (typeof a === 'string') return a.length <= 32 ? a.toUpperCase() : '';
  return a.length <= 32 ? argText(a).toUpperCase() : '';
}
