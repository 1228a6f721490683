/**
 * Connection options: the types, the defaults, URL parsing and validation. Everything a
 * user can set is listed here (and in the README's option table).
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { inspect } from 'node:util';
import { ConfigError } from './errors.js';
import { resolveCacheOptions, type CacheOptions, type ResolvedCacheOptions } from './cache-options.js';

/**
 * A password that cannot leak by accident: util.inspect, JSON.stringify, String() and
 * template strings all show "***". Only `reveal()` gives the text, for AUTH.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
  [inspect.custom](): string {
    return 'Secret(***)';
  }
}

export interface ReconnectOptions {
  /** Delay before the first retry, in ms. Default 50. */
  initialDelay?: number | undefined;
  /** Upper bound of the delay, in ms. Default 2000. */
  maxDelay?: number | undefined;
  /** Growth factor between attempts. Default 2. */
  factor?: number | undefined;
  /** Fraction of the delay that is randomised (0..1), so that clients do not retry in lockstep. Default 0.5. */
  jitter?: number | undefined;
  /**
   * Most reconnect attempts in a row (each announced by a 'reconnecting' event); when the
   * last one fails too, the connection closes for good ('end'). Default Infinity.
   */
  maxAttempts?: number | undefined;
  /**
   * When reconnect attempt number `failQueuedAfter` is announced, queued commands are rejected
   * (ConnectionClosedError, written: false) and new ones fail at once until the connection is
   * back, so no caller waits for a server that is not there. Default 10.
   */
  failQueuedAfter?: number | undefined;
}

export interface ConnectionOptions {
  /**
   * A redis://, rediss:// or unix:// URL; the other options given next to it win over what it
   * says (e.g. `{ url: 'rediss://host', tls: { ca } }`).
   */
  url?: string | undefined;
  host?: string | undefined;
  /** A number, or a string of digits (as in a URL or an environment variable). */
  port?: number | string | undefined;
  /** Unix socket path (instead of host/port). */
  path?: string | undefined;
  /** ACL user name (Redis 6+); with `password`, AUTH username password. */
  username?: string | undefined;
  /** Sent with AUTH and never shown: errors, events and util.inspect see "***". */
  password?: string | Secret | undefined;
  /** Database index for SELECT. Default 0. */
  db?: number | undefined;
  /** CLIENT SETNAME value. */
  name?: string | undefined;
  /**
   * true, or node:tls options (ca, cert, key, servername...). `rediss://` sets it to true, which
   * keeps the node:tls options given elsewhere (loop defaults or next to `url`).
   */
  tls?: boolean | TlsOptions | undefined;
  /** ms to connect and finish the handshake before the attempt fails. Default 10000. */
  connectTimeout?: number | undefined;
  /** ms a command may wait for its reply (0 = no limit). Default 0. */
  commandTimeout?: number | undefined;
  /** Destroy and reconnect the connection when a command times out. Default false. */
  resetOnTimeout?: boolean | undefined;
  /** Decode replies' strings as Buffers. Default false. */
  returnBuffers?: boolean | undefined;
  /**
   * Decode integer replies as bigints, exact over the whole 64-bit range. Default false: numbers,
   * exact up to 2^53 and the nearest double beyond.
   */
  bigInt?: boolean | undefined;
  /** Queue commands while not connected (true) or reject them at once (false). Default true. */
  offlineQueue?: boolean | undefined;
  /** Most commands the offline queue holds; beyond it commands reject. Default 100000. */
  maxOfflineQueue?: number | undefined;
  /** Reconnect policy, or false to never reconnect. */
  reconnect?: ReconnectOptions | false | undefined;
  /** `loop.drain(conn)` waits until fewer replies than this are pending. Default 10000. */
  maxPending?: number | undefined;
  /** `loop.drain(conn)` waits until fewer bytes than this wait to be written. Default 4 MiB. */
  maxBufferedBytes?: number | undefined;
  /** TCP keep-alive initial delay in ms, or false. Default 30000. */
  keepAlive?: number | false | undefined;
  /** Send READONLY after connecting, to read from a Redis Cluster replica. Default false. */
  readOnly?: boolean | undefined;
  /**
   * Client-side caching (docs/cache.md): reads sent with `{ cache: true | ttlMs }` (or every
   * cacheable read, with `auto`) are answered from memory until the server invalidates them.
   * Needs RESP3. true for the defaults.
   */
  cache?: CacheOptions | boolean | undefined;
  /**
   * RESP version: 3 (default) says `HELLO 3` in the handshake and falls back to RESP2 silently
   * when the server does not know HELLO (Redis < 6); 2 never says HELLO. Replies have the same
   * shapes either way unless `resp3` is on (see docs/resp3.md).
   */
  protocol?: 2 | 3 | undefined;
  /**
   * Decode RESP3 types natively: Map for maps, Set for sets, number for doubles, boolean,
   * bigint for big numbers (see docs/resp3.md). Default false: replies keep their RESP2 shapes.
   * Needs protocol 3; on a server that fell back to RESP2 replies are what RESP2 sends.
   */
  resp3?: boolean | undefined;
}

/** The reconnect policy in force: every field set (not Required<>, which keeps `| undefined` under exactOptionalPropertyTypes). */
export type ResolvedReconnect = { [K in keyof ReconnectOptions]-?: number };

export interface ResolvedOptions {
  host: string;
  port: number;
  path: string | undefined;
  username: string | undefined;
  password: Secret | undefined;
  db: number;
  name: string | undefined;
  tls: TlsOptions | undefined;
  connectTimeout: number;
  commandTimeout: number;
  resetOnTimeout: boolean;
  returnBuffers: boolean;
  bigInt: boolean;
  offlineQueue: boolean;
  maxOfflineQueue: number;
  reconnect: ResolvedReconnect | false;
  maxPending: number;
  maxBufferedBytes: number;
  keepAlive: number | false;
  readOnly: boolean;
  cache: ResolvedCacheOptions | undefined;
  protocol: 2 | 3;
  resp3: boolean;
}

export const DEFAULT_RECONNECT: ResolvedReconnect = {
  initialDelay: 50, maxDelay: 2000, factor: 2, jitter: 0.5, maxAttempts: Infinity, failQueuedAfter: 10,
};

const DEFAULTS: Omit<ResolvedOptions, 'reconnect'> = {
  host: '127.0.0.1', port: 6379, path: undefined, username: undefined, password: undefined, db: 0,
  name: undefined, tls: undefined, connectTimeout: 10_000, commandTimeout: 0, resetOnTimeout: false,
  returnBuffers: false, bigInt: false, offlineQueue: true, maxOfflineQueue: 100_000, maxPending: 10_000,
  maxBufferedBytes: 4 * 1024 * 1024, keepAlive: 30_000, readOnly: false, protocol: 3, resp3: false, cache: undefined,
};

const KNOWN = new Set<string>(['url', ...Object.keys(DEFAULTS), 'reconnect']);
const KNOWN_RECONNECT = new Set(Object.keys(DEFAULT_RECONNECT));

/** Parses `redis://`, `rediss://` and `unix://` URLs into options. Never echoes the password. */
export function parseRedisUrl(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`not a valid Redis URL: ${redactUrl(url)} (expected redis://host:port/db, rediss://... or unix:///path)`);
  }
  const opts: ConnectionOptions = {};
  if (u.protocol === 'unix:') {
    if (!u.pathname) throw new ConfigError('unix:// URL needs a socket path, e.g. unix:///var/run/redis.sock');
    opts.path = decodeUrlPart(u.pathname, 'socket path');
  } else if (u.protocol === 'redis:' || u.protocol === 'rediss:') {
    if (u.hostname) opts.host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (u.port) opts.port = Number(u.port);
    const db = u.pathname.replace(/^\//, '');
    if (db !== '') {
      if (!/^\d+$/.test(db)) {
        // Echo the text only when it cannot be part of a mistyped password.
        const shown = /^[\w.-]{1,32}$/.test(db) ? `, got "${db}"` : '';
        throw new ConfigError(`database in URL must be a number (redis://host:port/DB)${shown}`);
      }
      opts.db = Number(db);
    }
    if (u.protocol === 'rediss:') opts.tls = true;
  } else {
    throw new ConfigError(`unsupported URL scheme "${u.protocol}" (use redis://, rediss:// or unix://)`);
  }
  if (u.username) opts.username = decodeUrlPart(u.username, 'username');
  if (u.password) opts.password = decodeUrlPart(u.password, 'password');
  if (u.protocol !== 'unix:' && u.username && !u.password) {
    // redis://:pass@host has an empty user; redis://pass@host is the classic password-only form.
    opts.password = opts.username;
    delete opts.username;
  }
  for (const [key, value] of u.searchParams) {
    if (key === 'db') opts.db = Number(value);
    else if (key === 'name') opts.name = value;
    else if (key === 'connectTimeout' || key === 'commandTimeout') opts[key] = Number(value);
    else if (key === 'protocol') opts.protocol = Number(value) as 2 | 3;
    else throw new ConfigError(`unknown URL parameter "${key}" (known: db, name, connectTimeout, commandTimeout, protocol)`);
  }
  return opts;
}

/** Percent-decodes a part of a URL; a bad escape is a ConfigError that does not show the part. */
function decodeUrlPart(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ConfigError(`the ${what} in the URL is not valid percent-encoding (write % as %25)`);
  }
}

/**
 * The URL with its credentials replaced by "***", for messages. A URL that does not parse may
 * hold a password with unescaped "/", ":" or "@", so everything up to the last "@" goes.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^]*@/i, '$1***@');
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new ConfigError(what);
}

const isCount = (v: unknown) => typeof v === 'number' && (Number.isInteger(v) || v === Infinity) && v >= 0;

/** The longest delay setTimeout() honours; it runs a longer one after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The first option name of `options` that is not in `known`, as a ConfigError naming the call
 * (`what`, e.g. "transaction()"); undefined when all are known. Not an object: a TypeError.
 */
export function unknownOptionError(options: unknown, known: readonly string[], what: string): Error | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return new TypeError(`${what}: options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) return new ConfigError(`${what}: unknown option "${key}" (known: ${known.join(', ')})`);
  }
  return undefined;
}

/**
 * Why per-command options (`loop.send`, `tx.send`, `multi`, `script.run`) cannot be used, or
 * undefined: options that are not an object are a wrong argument (TypeError); an unknown name or
 * a bad value is a ConfigError, as the options of connect() and of every feature are.
 */
export function commandOptionsError(options: unknown, known: readonly string[], what = ''): Error | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return new TypeError(`${what}command options must be an object like { timeout: 500 }, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) return new ConfigError(`${what}unknown command option "${key}" (known: ${known.join(', ')})`);
  }
  for (const key of ['returnBuffers', 'bigInt', 'resp3']) {
    const v = o[key];
    if (v !== undefined && typeof v !== 'boolean') return new ConfigError(`${what}${key} must be a boolean, got ${shown(v)}`);
  }
  const timeout = o.timeout;
  if (timeout === undefined || timeout === 0) return undefined;
  if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) {
    return new ConfigError(`${what}timeout must be a positive number of ms, got ${shown(timeout)}`);
  }
  if (timeout > MAX_TIMER_MS) return new ConfigError(`${what}timeout must be at most ${MAX_TIMER_MS} ms (0 for no limit), got ${timeout}`);
  return undefined;
}

function shown(v: unknown): string {
  return typeof v === 'string' ? `the string "${v.slice(0, 32)}"` : String(v).slice(0, 32);
}

/** Merges user options over loop defaults over built-in defaults, and validates the result. */
export function resolveOptions(user: string | ConnectionOptions, loopDefaults: ConnectionOptions = {}): ResolvedOptions {
  if (typeof user !== 'string' && (user === null || typeof user !== 'object' || Array.isArray(user))) {
    throw new ConfigError(`connect() takes a URL string or an options object, got ${user === null ? 'null' : Array.isArray(user) ? 'an array' : typeof user}`);
  }
  for (const source of [loopDefaults, user]) {
    if (typeof source === 'string') continue;
    for (const key of Object.keys(source)) {
      if (!KNOWN.has(key)) throw new ConfigError(`unknown option "${key}" (known: ${[...KNOWN].join(', ')})`);
    }
  }
  const layers = [loopDefaults, user].flatMap((source): ConnectionOptions[] => {
    if (typeof source === 'string') return [parseRedisUrl(source)];
    const { url, ...rest } = source;
    if (url === undefined) return [rest];
    check(typeof url === 'string', `url must be a string, got ${typeof url}`);
    return [parseRedisUrl(url), rest];
  });
  const merged = { ...DEFAULTS } as Record<string, unknown>;
  for (const layer of layers) {
    for (const [k, v] of Object.entries(stripUndefined(layer))) {
      // tls: true (from rediss://) switches TLS on without dropping options given below it.
      if (k === 'tls' && v === true && typeof merged.tls === 'object' && merged.tls !== null) continue;
      merged[k] = v;
    }
  }
  // A port read from an environment variable is a string: digits are taken, as in a URL.
  if (typeof merged.port === 'string' && /^\d{1,5}$/.test(merged.port)) merged.port = Number(merged.port);
  const r = merged as unknown as ResolvedOptions;

  check(typeof r.host === 'string' && r.host.length > 0, `host must be a non-empty string`);
  check(Number.isInteger(r.port) && r.port > 0 && r.port < 65536,
    `port must be an integer 1..65535, got ${typeof r.port === 'string' ? `the string "${String(r.port).slice(0, 32)}"` : String(r.port)}`);
  check(r.path === undefined || (typeof r.path === 'string' && r.path.length > 0), 'path must be a non-empty string');
  check(r.username === undefined || typeof r.username === 'string', 'username must be a string');
  const password: unknown = merged.password;
  check(password === undefined || typeof password === 'string' || password instanceof Secret, 'password must be a string');
  r.password = typeof password === 'string' ? new Secret(password) : password as Secret | undefined;
  check(r.username === undefined || r.password !== undefined, 'username needs a password (AUTH username password)');
  check(Number.isInteger(r.db) && r.db >= 0, `db must be a non-negative integer, got ${String(r.db)}`);
  check(r.name === undefined || (typeof r.name === 'string' && /^[^\s]+$/.test(r.name)), 'name must be a string without spaces (CLIENT SETNAME)');
  for (const k of ['connectTimeout', 'commandTimeout', 'maxOfflineQueue'] as const) {
    check(isCount(r[k]), `${k} must be a non-negative number, got ${String(r[k])}`);
  }
  for (const k of ['connectTimeout', 'commandTimeout'] as const) {
    check(r[k] <= MAX_TIMER_MS, `${k} must be at most ${MAX_TIMER_MS} ms (0 for no limit), got ${String(r[k])}`);
  }
  for (const k of ['maxPending', 'maxBufferedBytes'] as const) {
    check(isCount(r[k]) && r[k] > 0, `${k} must be a positive number, got ${String(r[k])}`);
  }
  check(r.keepAlive === false || isCount(r.keepAlive), 'keepAlive must be a number of ms or false');
  for (const k of ['resetOnTimeout', 'returnBuffers', 'bigInt', 'offlineQueue', 'readOnly', 'resp3'] as const) {
    check(typeof r[k] === 'boolean', `${k} must be a boolean`);
  }
  check(r.protocol === 2 || r.protocol === 3, `protocol must be 2 or 3 (RESP2 or RESP3), got ${String(r.protocol).slice(0, 32)}`);
  check(!(r.resp3 && r.protocol === 2), 'resp3: true needs protocol 3 (native RESP3 types cannot come over RESP2)');

  r.cache = resolveCacheOptions(merged.cache);
  check(!(r.cache !== undefined && r.protocol === 2), 'cache needs RESP3 (the server pushes its invalidations on the connection): remove protocol: 2, or the cache option');

  const tlsGiven = merged.tls;
  if (tlsGiven === true) r.tls = {};
  else if (tlsGiven === false || tlsGiven === undefined) r.tls = undefined;
  else check(typeof tlsGiven === 'object' && tlsGiven !== null, 'tls must be true or node:tls connection options');

  const rc = merged.reconnect as ConnectionOptions['reconnect'];
  if (rc === false) {
    r.reconnect = false;
  } else {
    check(rc === undefined || (typeof rc === 'object' && rc !== null), 'reconnect must be false or an object');
    for (const key of Object.keys(rc ?? {})) {
      check(KNOWN_RECONNECT.has(key), `unknown reconnect option "${key}" (known: ${[...KNOWN_RECONNECT].join(', ')})`);
    }
    const merged = { ...DEFAULT_RECONNECT, ...stripUndefined(rc ?? {}) };
    for (const [k, v] of Object.entries(merged)) check(typeof v === 'number' && v >= 0, `reconnect.${k} must be a non-negative number`);
    check(merged.jitter >= 0 && merged.jitter <= 1, 'reconnect.jitter must be between 0 and 1');
    check(merged.factor >= 1, 'reconnect.factor must be at least 1');
    for (const k of ['initialDelay', 'maxDelay'] as const) {
      check(merged[k] <= MAX_TIMER_MS, `reconnect.${k} must be at most ${MAX_TIMER_MS} ms, got ${String(merged[k])}`);
    }
    r.reconnect = merged;
  }
  return r as ResolvedOptions;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** Delay before reconnect attempt `attempt` (1-based): exponential, capped, jittered. */
export function backoffDelay(policy: ResolvedReconnect, attempt: number): number {
  const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** (attempt - 1));
  return Math.round(base * (1 - policy.jitter * Math.random()));
}

/** A copy of `options` whose password is a Secret, for objects kept around (loop defaults). */
export function concealSecrets(options: ConnectionOptions): ConnectionOptions {
  if (options === null || typeof options !== 'object' || typeof options.password !== 'string') return options;
  return { ...options, password: new Secret(options.password) };
}
