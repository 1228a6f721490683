// RESP3 keeps RESP2's shapes: every command of a corpus over every data type runs on a
// `protocol: 2` and a `protocol: 3` connection against the same data (rebuilt before each run),
// as strings and as Buffers, and the two values must be deep-equal. What the server itself sends
// differently, that no mapping can undo, is listed in KNOWN_DIFFERENCES (and docs/resp3.md) and
// asserted to differ, so that a list that goes stale fails too.
import { expect } from 'chai';
import { EventLoop, Future, type Connection } from '../lib/index.js';
import { startRedis, type RedisServer } from '../harness/index.js';

type Cmd = string[];
interface Case {
  /** The command; for a block, a name for it. */
  cmd: Cmd;
  /** The command to send, when `cmd` is only a name for the case. */
  raw?: Cmd;
  /** Blanks what depends on the clock (idle times), in both values, before they are compared. */
  stable?: (value: unknown) => unknown;
  /** loop.multi(): MULTI, these, EXEC. */
  block?: Cmd[];
  /** Commands run after the fixture, before `cmd`. */
  setup?: Cmd[];
}

/** The data every case starts from (after FLUSHALL). */
const FIXTURE: Cmd[] = [
  ['SET', 'str', 'hello world'], ['SET', 'num', '10'], ['SET', 'flt', '1.5'], ['SET', 'bits', 'foobar'],
  ['SET', 'bin', '\u00e9t\u00e9 \u2603'], ['MSET', 'k1', 'v1', 'k2', 'v2', 'k3', 'v3'],
  ['RPUSH', 'list', 'a', 'b', 'c', 'd', 'e', 'a'], ['RPUSH', 'list2', 'x', 'y'],
  ['HSET', 'hash', 'f1', 'v1', 'f2', 'v2', 'f3', '3', 'ff', '1.25'], ['HSET', 'hsingle', 'f', 'v'],
  ['SADD', 'set', 'a', 'b', 'c'], ['SADD', 'set2', 'b', 'c', 'd'], ['SADD', 'ssingle', 'x'], ['SADD', 'iset', '1', '2', '3'],
  ['ZADD', 'zset', '1', 'a', '2', 'b', '3', 'c', '4.5', 'd', '0.1', 'e'], ['ZADD', 'zset2', '2', 'b', '3', 'c', '10', 'z'],
  ['ZADD', 'zsingle', '1.5', 'm'], ['ZADD', 'zlex', '0', 'a', '0', 'b', '0', 'c', '0', 'd'],
  ['ZADD', 'zinf', '-inf', 'lo', '+inf', 'hi', '0', 'zero'],
  ['XADD', 'stream', '1-1', 'f', 'v'], ['XADD', 'stream', '2-1', 'f2', 'v2', 'f3', 'v3'], ['XADD', 'stream', '3-1', 'n', '1'],
  ['XGROUP', 'CREATE', 'stream', 'g', '0'], ['XADD', 'stream2', '5-1', 'a', '1'],
  ['XGROUP', 'CREATE', 'stream2', 'g2', '0'],
  ['GEOADD', 'geo', '13.361389', '38.115556', 'Palermo', '15.087269', '37.502669', 'Catania'],
  ['PFADD', 'hll', 'a', 'b', 'c'], ['PFADD', 'hll2', 'c', 'd'],
  ['SETBIT', 'bm', '7', '1'], ['SETBIT', 'bm', '100', '1'], ['SET', 'bm2', '\u00ff\u00f0'],
  ['SET', 'ttl', 'x', 'EX', '1000'],
];

const c = (...cmd: string[]): Case => ({ cmd });
const block = (...commands: Cmd[]): Case => ({ cmd: ['MULTI', ...commands.map((x) => x[0]!), 'EXEC'], block: commands });
/** Idle times (ms since the consumer or the entry was last seen) differ by a millisecond between runs. */
const noIdle = (value: unknown): unknown => {
  if (!Array.isArray(value)) return value;
  return value.map((consumer) => (Array.isArray(consumer)
    ? consumer.map((x, i) => (i > 0 && ['idle', 'inactive'].includes(String(consumer[i - 1])) ? 0 : x))
    : consumer));
};
const noEntryIdle = (value: unknown): unknown => (Array.isArray(value) ? value.map((entry) => (Array.isArray(entry) ? [entry[0], entry[1], 0, entry[3]] : entry)) : value);
const stable = (test: Case, stable: (value: unknown) => unknown): Case => ({ ...test, stable });
const given = (setup: Cmd[], ...cmd: string[]): Case => ({ cmd, setup });

const LUA_RESP3 = 'redis.setresp(3); ';
const CORPUS: Case[] = [
  // ---------------------------------------------------------------- strings
  c('GET', 'str'), c('GET', 'nokey'), c('GET', 'bin'), c('SET', 'a', 'b'), c('SET', 'str', 'x', 'GET'), c('SET', 'str', 'x', 'NX'),
  c('SET', 'new', 'x', 'NX', 'GET'), c('SETNX', 'str', 'y'), c('GETSET', 'str', 'z'), c('GETDEL', 'str'), c('GETEX', 'str', 'PERSIST'),
  c('GETRANGE', 'str', '0', '4'), c('SETRANGE', 'str', '6', 'there'), c('APPEND', 'str', '!'), c('STRLEN', 'str'),
  c('INCR', 'num'), c('DECR', 'num'), c('INCRBY', 'num', '5'), c('DECRBY', 'num', '5'), c('INCRBYFLOAT', 'flt', '0.1'),
  c('INCRBYFLOAT', 'num', '1e3'), c('INCR', 'str'), c('MGET', 'k1', 'nokey', 'k3'), c('MSET', 'a', '1', 'b', '2'),
  c('MSETNX', 'k1', 'x', 'zz', 'y'), c('SETEX', 'e', '100', 'v'), c('PSETEX', 'e', '100000', 'v'),
  c('LCS', 'k1', 'k2'), c('LCS', 'k1', 'k2', 'LEN'), c('LCS', 'k1', 'k2', 'IDX'), c('LCS', 'k1', 'k2', 'IDX', 'WITHMATCHLEN', 'MINMATCHLEN', '1'),
  c('SUBSTR', 'str', '0', '2'),
  // ---------------------------------------------------------------- keys
  c('EXISTS', 'str', 'nokey', 'list'), c('TYPE', 'str'), c('TYPE', 'zset'), c('TYPE', 'stream'), c('TYPE', 'nokey'),
  c('DEL', 'str', 'nokey'), c('UNLINK', 'list'), c('TTL', 'str'), c('TTL', 'nokey'), c('TTL', 'ttl'), c('PTTL', 'str'),
  c('EXPIRE', 'str', '100'), c('EXPIRE', 'str', '100', 'NX'), c('PEXPIRE', 'str', '100000'), c('EXPIREAT', 'str', '4000000000'),
  c('EXPIRETIME', 'str'), c('PERSIST', 'ttl'), c('RENAME', 'str', 'str3'), c('RENAMENX', 'str', 'num'), c('COPY', 'hash', 'hash3'),
  c('DBSIZE'), c('KEYS', 'k*'), c('SCAN', '0', 'MATCH', 'k*', 'COUNT', '1000'), c('SCAN', '0', 'TYPE', 'zset', 'COUNT', '1000'),
  c('TOUCH', 'str', 'list'), c('OBJECT', 'ENCODING', 'str'), c('OBJECT', 'ENCODING', 'zset'), c('OBJECT', 'ENCODING', 'nokey'),
  c('OBJECT', 'REFCOUNT', 'list'), c('MEMORY', 'USAGE', 'list'), c('DUMP', 'nokey'), c('SORT', 'list', 'ALPHA'),
  c('SORT', 'iset'), c('SORT', 'iset', 'DESC', 'LIMIT', '0', '2'), c('SORT_RO', 'list', 'ALPHA'), c('MOVE', 'str', '1'),
  given([['FLUSHALL'], ['SET', 'only', '1']], 'RANDOMKEY'),
  // ---------------------------------------------------------------- lists
  c('LRANGE', 'list', '0', '-1'), c('LRANGE', 'nokey', '0', '-1'), c('LLEN', 'list'), c('LINDEX', 'list', '1'), c('LINDEX', 'list', '99'),
  c('LPUSH', 'list', 'z'), c('RPUSH', 'list', 'z', 'y'), c('LPUSHX', 'nokey', 'a'), c('RPUSHX', 'list', 'q'), c('LPOP', 'list'),
  c('RPOP', 'list'), c('LPOP', 'list', '2'), c('RPOP', 'list', '3'), c('LPOP', 'nokey'), c('LPOP', 'nokey', '2'),
  c('LSET', 'list', '0', 'A'), c('LINSERT', 'list', 'BEFORE', 'c', 'bb'), c('LREM', 'list', '0', 'a'), c('LTRIM', 'list', '1', '2'),
  c('LPOS', 'list', 'a'), c('LPOS', 'list', 'a', 'COUNT', '0'), c('LPOS', 'list', 'q'), c('LMOVE', 'list', 'list2', 'LEFT', 'RIGHT'),
  c('RPOPLPUSH', 'list', 'list2'), c('LMPOP', '2', 'nokey', 'list', 'LEFT', 'COUNT', '2'), c('LMPOP', '1', 'nokey', 'LEFT'),
  c('BLPOP', 'list', '1'), c('BRPOP', 'nokey', 'list', '1'), c('BLMOVE', 'list', 'list2', 'RIGHT', 'LEFT', '1'),
  c('BLMPOP', '1', '1', 'list', 'RIGHT', 'COUNT', '2'), c('BRPOPLPUSH', 'list', 'list2', '1'),
  // ---------------------------------------------------------------- hashes
  c('HGETALL', 'hash'), c('HGETALL', 'nokey'), c('HGET', 'hash', 'f1'), c('HGET', 'hash', 'nof'), c('HMGET', 'hash', 'f1', 'nof', 'f3'),
  c('HSET', 'hash', 'f9', 'v9'), c('HSETNX', 'hash', 'f1', 'x'), c('HMSET', 'hash', 'a', '1'), c('HDEL', 'hash', 'f1', 'nof'),
  c('HLEN', 'hash'), c('HSTRLEN', 'hash', 'f1'), c('HEXISTS', 'hash', 'f1'), c('HKEYS', 'hash'), c('HVALS', 'hash'),
  c('HINCRBY', 'hash', 'f3', '2'), c('HINCRBYFLOAT', 'hash', 'ff', '0.5'), c('HINCRBYFLOAT', 'hash', 'f3', '1.5e2'),
  c('HSCAN', 'hash', '0'), c('HSCAN', 'hash', '0', 'MATCH', 'f*', 'COUNT', '100'), c('HRANDFIELD', 'hsingle'),
  c('HRANDFIELD', 'hsingle', '1'), c('HRANDFIELD', 'hsingle', '-3'), c('HRANDFIELD', 'hsingle', '1', 'WITHVALUES'),
  c('HRANDFIELD', 'hsingle', '-3', 'WITHVALUES'), c('HRANDFIELD', 'nokey', '2', 'WITHVALUES'), c('HRANDFIELD', 'nokey'),
  // ---------------------------------------------------------------- sets
  c('SMEMBERS', 'set'), c('SMEMBERS', 'nokey'), c('SMEMBERS', 'iset'), c('SISMEMBER', 'set', 'a'), c('SMISMEMBER', 'set', 'a', 'q'),
  c('SADD', 'set', 'q', 'a'), c('SREM', 'set', 'a'), c('SCARD', 'set'), c('SINTER', 'set', 'set2'), c('SUNION', 'set', 'set2'),
  c('SDIFF', 'set', 'set2'), c('SINTERCARD', '2', 'set', 'set2'), c('SINTERSTORE', 'dst', 'set', 'set2'),
  c('SUNIONSTORE', 'dst', 'set', 'set2'), c('SDIFFSTORE', 'dst', 'set', 'set2'), c('SMOVE', 'set', 'set2', 'a'),
  c('SPOP', 'ssingle'), c('SPOP', 'ssingle', '3'), c('SPOP', 'nokey'), c('SPOP', 'nokey', '2'), c('SRANDMEMBER', 'ssingle'),
  c('SRANDMEMBER', 'ssingle', '-3'), c('SRANDMEMBER', 'nokey', '2'), c('SSCAN', 'set', '0', 'COUNT', '100'),
  // ---------------------------------------------------------------- sorted sets
  c('ZRANGE', 'zset', '0', '-1'), c('ZRANGE', 'zset', '0', '-1', 'WITHSCORES'), c('ZRANGE', 'zset', '0', '-1', 'withscores'),
  c('ZRANGE', 'zset', '(1', '+inf', 'BYSCORE', 'WITHSCORES'), c('ZRANGE', 'zset', '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', '0', '2', 'WITHSCORES'),
  c('ZRANGE', 'zlex', '[a', '(c', 'BYLEX'), c('ZRANGE', 'nokey', '0', '-1', 'WITHSCORES'), c('ZRANGE', 'zinf', '0', '-1', 'WITHSCORES'),
  c('ZRANGEBYSCORE', 'zset', '-inf', '+inf'), c('ZRANGEBYSCORE', 'zset', '-inf', '+inf', 'WITHSCORES'),
  c('ZRANGEBYSCORE', 'zset', '2', '4', 'WITHSCORES', 'LIMIT', '1', '5'), c('ZREVRANGE', 'zset', '0', '2'),
  c('ZREVRANGE', 'zset', '0', '2', 'WITHSCORES'), c('ZREVRANGEBYSCORE', 'zset', '+inf', '-inf', 'WITHSCORES'),
  c('ZRANGEBYLEX', 'zlex', '-', '+'), c('ZREVRANGEBYLEX', 'zlex', '+', '-', 'LIMIT', '0', '2'), c('ZRANGESTORE', 'dst', 'zset', '0', '1'),
  c('ZSCORE', 'zset', 'd'), c('ZSCORE', 'zset', 'e'), c('ZSCORE', 'zset', 'nom'), c('ZSCORE', 'zinf', 'lo'), c('ZSCORE', 'zinf', 'hi'),
  c('ZMSCORE', 'zset', 'a', 'nom', 'd'), c('ZADD', 'zset', '7', 'q'), c('ZADD', 'zset', 'INCR', '2.5', 'a'),
  c('ZADD', 'zset', 'NX', 'INCR', '1', 'a'), c('ZADD', 'zset', 'CH', '5', 'a', '6', 'new'), c('ZINCRBY', 'zset', '0.25', 'a'),
  c('ZINCRBY', 'zset', '1e2', 'new'), c('ZINCRBY', 'zinf', '1', 'hi'), c('ZCARD', 'zset'), c('ZCOUNT', 'zset', '1', '3'),
  c('ZLEXCOUNT', 'zlex', '-', '+'), c('ZRANK', 'zset', 'c'), c('ZREVRANK', 'zset', 'c'), c('ZRANK', 'zset', 'nom'),
  c('ZREM', 'zset', 'a', 'nom'), c('ZREMRANGEBYRANK', 'zset', '0', '1'), c('ZREMRANGEBYSCORE', 'zset', '1', '2'),
  c('ZREMRANGEBYLEX', 'zlex', '[a', '[b'), c('ZPOPMIN', 'zset'), c('ZPOPMIN', 'zset', '2'), c('ZPOPMAX', 'zset'),
  c('ZPOPMAX', 'zset', '3'), c('ZPOPMIN', 'nokey'), c('ZPOPMIN', 'nokey', '2'), c('ZPOPMIN', 'zset', '1'),
  c('BZPOPMIN', 'zset', '1'), c('BZPOPMAX', 'nokey', 'zset', '1'), c('ZMPOP', '1', 'zset', 'MIN'), c('ZMPOP', '2', 'nokey', 'zset', 'MAX', 'COUNT', '2'),
  c('ZMPOP', '1', 'nokey', 'MIN'), c('BZMPOP', '1', '1', 'zset', 'MIN', 'COUNT', '3'),
  c('ZUNION', '2', 'zset', 'zset2'), c('ZUNION', '2', 'zset', 'zset2', 'WITHSCORES'), c('ZUNION', '2', 'zset', 'zset2', 'WEIGHTS', '1', '0.5', 'AGGREGATE', 'MAX', 'WITHSCORES'),
  c('ZINTER', '2', 'zset', 'zset2'), c('ZINTER', '2', 'zset', 'zset2', 'WITHSCORES'), c('ZDIFF', '2', 'zset', 'zset2'),
  c('ZDIFF', '2', 'zset', 'zset2', 'WITHSCORES'), c('ZINTERCARD', '2', 'zset', 'zset2'), c('ZUNIONSTORE', 'dst', '2', 'zset', 'zset2'),
  c('ZINTERSTORE', 'dst', '2', 'zset', 'zset2'), c('ZDIFFSTORE', 'dst', '2', 'zset', 'zset2'),
  c('ZRANDMEMBER', 'zsingle'), c('ZRANDMEMBER', 'zsingle', '1'), c('ZRANDMEMBER', 'zsingle', '-3'),
  c('ZRANDMEMBER', 'zsingle', '1', 'WITHSCORES'), c('ZRANDMEMBER', 'zsingle', '-3', 'WITHSCORES'), c('ZRANDMEMBER', 'nokey', '1', 'WITHSCORES'),
  c('ZSCAN', 'zset', '0'), c('ZSCAN', 'zset', '0', 'COUNT', '100'), c('ZSCAN', 'zinf', '0'),
  // ---------------------------------------------------------------- streams
  c('XRANGE', 'stream', '-', '+'), c('XRANGE', 'stream', '-', '+', 'COUNT', '1'), c('XREVRANGE', 'stream', '+', '-'),
  c('XLEN', 'stream'), c('XADD', 'stream', '9-1', 'a', 'b'), c('XADD', 'stream', 'NOMKSTREAM', 'MAXLEN', '2', '9-1', 'a', 'b'),
  c('XREAD', 'STREAMS', 'stream', '0'), c('XREAD', 'COUNT', '1', 'STREAMS', 'stream', 'stream2', '0', '0'),
  c('XREAD', 'STREAMS', 'stream', '$'), c('XREAD', 'STREAMS', 'stream', '99-0'), c('XREAD', 'BLOCK', '1', 'STREAMS', 'stream', '99-0'),
  c('xread', 'streams', 'stream', 'stream2', '1-1', '0'),
  c('XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>'), c('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', '1', 'STREAMS', 'stream', '>'),
  given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '0'),
  c('XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', 'stream2', '>', '>'),
  given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XPENDING', 'stream', 'g'),
  stable(given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XPENDING', 'stream', 'g', '-', '+', '10'), noEntryIdle),
  given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XACK', 'stream', 'g', '1-1', '2-1'),
  given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XCLAIM', 'stream', 'g', 'c2', '0', '1-1', '2-1'),
  given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XCLAIM', 'stream', 'g', 'c2', '0', '1-1', 'JUSTID'),
  given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XAUTOCLAIM', 'stream', 'g', 'c2', '0', '0'),
  given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XAUTOCLAIM', 'stream', 'g', 'c2', '0', '0', 'JUSTID'),
  c('XDEL', 'stream', '1-1'), c('XTRIM', 'stream', 'MAXLEN', '1'), c('XSETID', 'stream', '10-1'),
  c('XGROUP', 'CREATE', 'stream', 'g9', '$'), c('XGROUP', 'CREATECONSUMER', 'stream', 'g', 'c5'), c('XGROUP', 'DESTROY', 'stream', 'g'),
  c('XGROUP', 'SETID', 'stream', 'g', '0'), c('XGROUP', 'DELCONSUMER', 'stream', 'g', 'c1'),
  c('XINFO', 'GROUPS', 'stream'), stable(given([['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>']], 'XINFO', 'CONSUMERS', 'stream', 'g'), noIdle),
  c('XINFO', 'STREAM', 'stream'),
  // ---------------------------------------------------------------- geo
  c('GEOPOS', 'geo', 'Palermo', 'nowhere'), c('GEODIST', 'geo', 'Palermo', 'Catania'), c('GEODIST', 'geo', 'Palermo', 'Catania', 'km'),
  c('GEODIST', 'geo', 'Palermo', 'nowhere'), c('GEOHASH', 'geo', 'Palermo', 'Catania'),
  c('GEOSEARCH', 'geo', 'FROMLONLAT', '15', '37', 'BYRADIUS', '200', 'km', 'ASC'),
  c('GEOSEARCH', 'geo', 'FROMLONLAT', '15', '37', 'BYRADIUS', '200', 'km', 'ASC', 'WITHCOORD', 'WITHDIST', 'WITHHASH'),
  c('GEOSEARCH', 'geo', 'FROMMEMBER', 'Palermo', 'BYBOX', '400', '400', 'km', 'DESC', 'WITHDIST'),
  c('GEORADIUS', 'geo', '15', '37', '200', 'km', 'WITHDIST', 'ASC'), c('GEORADIUS_RO', 'geo', '15', '37', '200', 'km', 'WITHCOORD', 'ASC'),
  c('GEORADIUSBYMEMBER', 'geo', 'Palermo', '300', 'km', 'WITHDIST', 'WITHCOORD', 'ASC'),
  c('GEOSEARCHSTORE', 'dst', 'geo', 'FROMLONLAT', '15', '37', 'BYRADIUS', '200', 'km'), c('GEOADD', 'geo', '0', '0', 'null-island'),
  // ---------------------------------------------------------------- hyperloglog, bitmaps
  c('PFCOUNT', 'hll'), c('PFCOUNT', 'hll', 'hll2'), c('PFADD', 'hll', 'z'), c('PFMERGE', 'hll3', 'hll', 'hll2'),
  c('GETBIT', 'bm', '7'), c('SETBIT', 'bm', '8', '1'), c('BITCOUNT', 'bm'), c('BITCOUNT', 'bits', '1', '1'), c('BITCOUNT', 'bits', '5', '30', 'BIT'),
  c('BITPOS', 'bm', '1'), c('BITPOS', 'bits', '0', '1', '-1'), c('BITOP', 'AND', 'dst', 'bm', 'bm2'), c('BITOP', 'NOT', 'dst', 'bits'),
  c('BITFIELD', 'bm', 'GET', 'u8', '0', 'INCRBY', 'i5', '100', '1', 'SET', 'u4', '0', '3'), c('BITFIELD_RO', 'bits', 'GET', 'i8', '0'),
  c('BITFIELD', 'bm', 'OVERFLOW', 'FAIL', 'INCRBY', 'u2', '0', '9'),
  // ---------------------------------------------------------------- scripts and functions
  c('EVAL', 'return 1', '0'), c('EVAL', 'return "x"', '0'), c('EVAL', 'return {1, 2, {3, "x"}}', '0'), c('EVAL', 'return true', '0'),
  c('EVAL', 'return false', '0'), c('EVAL', 'return nil', '0'), c('EVAL', 'return 3.99', '0'), c('EVAL', 'return {err = "boom"}', '0'),
  c('EVAL', 'return {ok = "fine"}', '0'), c('EVAL', 'return redis.call("HGETALL", KEYS[1])', '1', 'hash'),
  c('EVAL', 'return redis.call("ZRANGE", KEYS[1], 0, -1, "WITHSCORES")', '1', 'zset'),
  c('EVAL', 'return redis.call("ZSCORE", KEYS[1], "d")', '1', 'zset'), c('EVAL', 'return redis.call("SMEMBERS", KEYS[1])', '1', 'set'),
  c('EVAL', 'return redis.pcall("INCR", KEYS[1])', '1', 'str'), c('EVAL', 'return {1, redis.pcall("INCR", KEYS[1]), 3}', '1', 'str'),
  c('EVAL', `${LUA_RESP3}return redis.call("HGETALL", KEYS[1])`, '1', 'hash'),
  c('EVAL', `${LUA_RESP3}return redis.call("ZRANGE", KEYS[1], 0, -1, "WITHSCORES")`, '1', 'zset'),
  c('EVAL', `${LUA_RESP3}return redis.call("ZSCORE", KEYS[1], "d")`, '1', 'zset'),
  c('EVAL', `${LUA_RESP3}return redis.call("SMEMBERS", KEYS[1])`, '1', 'iset'),
  c('EVAL', `${LUA_RESP3}return redis.call("XREAD", "STREAMS", KEYS[1], "0")`, '1', 'stream'),
  c('EVAL', `${LUA_RESP3}return redis.call("GET", "nokey")`, '0'), c('EVAL', `${LUA_RESP3}return true`, '0'),
  c('EVAL', `${LUA_RESP3}return false`, '0'), c('EVAL', `${LUA_RESP3}return {double = 3.5}`, '0'),
  c('EVAL', `${LUA_RESP3}return {map = {a = 1}}`, '0'), c('EVAL', `${LUA_RESP3}return {set = {a = true}}`, '0'),
  c('EVAL', `${LUA_RESP3}return {big_number = "123456789012345678901234567890"}`, '0'),
  c('EVAL', `${LUA_RESP3}return {verbatim_string = {format = "txt", string = "hi there"}}`, '0'),
  c('EVAL_RO', 'return redis.call("GET", KEYS[1])', '1', 'str'), c('SCRIPT', 'EXISTS', 'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', 'ffff'),
  given([['EVAL', 'return 1', '0']], 'EVALSHA', 'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '0'), c('SCRIPT', 'LOAD', 'return 2'),
  given([['FUNCTION', 'LOAD', '#!lua name=dlib\nredis.register_function("f1", function(k, a) return redis.call("ZRANGE", k[1], 0, -1, "WITHSCORES") end)\nredis.register_function{function_name="f2", callback=function(k, a) return {map={x=1}} end, flags={"no-writes"}}']],
    'FCALL', 'f1', '1', 'zset'),
  given([['FUNCTION', 'LOAD', '#!lua name=dlib\nredis.register_function("f1", function(k, a) return 1 end)']], 'FUNCTION', 'LIST'),
  given([['FUNCTION', 'LOAD', '#!lua name=dlib\nredis.register_function("f1", function(k, a) return 1 end)']], 'FUNCTION', 'LIST', 'WITHCODE'),
  given([['FUNCTION', 'LOAD', '#!lua name=dlib\nredis.register_function{function_name="f2", callback=function(k, a) return {map={x=1}} end, flags={"no-writes"}}']], 'FCALL_RO', 'f2', '0'),
  c('FUNCTION', 'STATS'), c('FUNCTION', 'LIST'),
  // ---------------------------------------------------------------- transactions
  c('EXEC'), c('DISCARD'),
  { cmd: ['MULTI', 'ZRANGE', 'HGETALL', 'ZSCORE', 'XREAD', 'INCR', 'EXEC', '(sent one by one)'], setup: [['MULTI'], ['ZRANGE', 'zset', '0', '-1', 'WITHSCORES'], ['HGETALL', 'hash'], ['ZSCORE', 'zset', 'd'], ['XREAD', 'STREAMS', 'stream', '0'], ['INCR', 'str']], raw: ['EXEC'] },
  block(['ZRANGE', 'zset', '0', '-1', 'WITHSCORES'], ['HGETALL', 'hash'], ['ZSCORE', 'zset', 'd'], ['XREAD', 'STREAMS', 'stream', '0'], ['INCR', 'str']),
  block(['ZPOPMIN', 'zset', '2'], ['HRANDFIELD', 'hsingle', '-2', 'WITHVALUES'], ['SMEMBERS', 'set'], ['ZRANDMEMBER', 'zsingle', '1', 'WITHSCORES']),
  block(['XREADGROUP', 'GROUP', 'g', 'c1', 'STREAMS', 'stream', '>'], ['ZUNION', '2', 'zset', 'zset2', 'WITHSCORES'], ['CONFIG', 'GET', 'maxmemory']),
  // ---------------------------------------------------------------- server, config, client (stable output)
  c('PING'), c('PING', 'hi'), c('ECHO', 'hello'), c('CONFIG', 'GET', 'maxmemory'), c('CONFIG', 'GET', 'hash-max-*'),
  c('CONFIG', 'GET', 'maxmemory', 'appendonly'), c('CONFIG', 'GET', 'nosuchparam'), c('CONFIG', 'SET', 'maxmemory-samples', '5'),
  c('COMMAND', 'INFO', 'GET', 'ZADD', 'nosuchcmd'), c('COMMAND', 'DOCS', 'GET'), c('COMMAND', 'DOCS', 'ZADD', 'XREAD'), c('COMMAND', 'COUNT'),
  c('COMMAND', 'GETKEYS', 'SET', 'a', 'b'), c('COMMAND', 'GETKEYSANDFLAGS', 'LMOVE', 'a', 'b', 'LEFT', 'RIGHT'),
  c('COMMAND', 'LIST', 'FILTERBY', 'ACLCAT', 'hyperloglog'), c('ACL', 'CAT'), c('ACL', 'CAT', 'string'), c('ACL', 'WHOAMI'),
  c('ACL', 'GETUSER', 'default'), c('ACL', 'LIST'), c('ACL', 'USERS'), c('ACL', 'DRYRUN', 'default', 'GET', 'x'),
  given([['ACL', 'SETUSER', 'alice', 'on', '>pw', '~k*', '+get']], 'ACL', 'GETUSER', 'alice'), c('CLIENT', 'GETNAME'),
  c('CLIENT', 'TRACKINGINFO'), c('CLIENT', 'GETREDIR'), c('INFO', 'keyspace'), c('MEMORY', 'DOCTOR'), c('LATENCY', 'LATEST'),
  c('LATENCY', 'DOCTOR'), c('OBJECT', 'HELP'), c('XINFO', 'HELP'), c('PUBSUB', 'CHANNELS'), c('PUBSUB', 'NUMSUB', 'a', 'b'),
  c('PUBSUB', 'NUMPAT'), c('PUBSUB', 'SHARDCHANNELS'), c('PUBSUB', 'SHARDNUMSUB', 'a'), c('PUBLISH', 'ch', 'm'), c('SPUBLISH', 'ch', 'm'),
  c('WAIT', '0', '0'), c('SELECT', '0'), c('SWAPDB', '0', '0'),
  c('CLIENT', 'NO-EVICT', 'off'), c('READWRITE'),
  c('DEBUG', 'PROTOCOL', 'string'), c('DEBUG', 'PROTOCOL', 'integer'), c('DEBUG', 'PROTOCOL', 'double'), c('DEBUG', 'PROTOCOL', 'bignum'),
  c('DEBUG', 'PROTOCOL', 'null'), c('DEBUG', 'PROTOCOL', 'array'), c('DEBUG', 'PROTOCOL', 'set'), c('DEBUG', 'PROTOCOL', 'map'),
  c('DEBUG', 'PROTOCOL', 'true'), c('DEBUG', 'PROTOCOL', 'false'), c('DEBUG', 'PROTOCOL', 'verbatim'), c('DEBUG', 'PROTOCOL', 'attrib'),
  c('DEBUG', 'PROTOCOL', 'push'), c('HELLO'), c('HELLO', '2'), c('CLIENT', 'INFO'),
  // ---------------------------------------------------------------- errors
  c('NOSUCHCOMMAND'), c('GET'), c('LPUSH', 'str', 'x'), c('INCR', 'flt'), c('ZADD', 'zset', 'x', 'y'), c('XADD', 'stream', '1-0', 'a', 'b'),
];

/**
 * Replies the server itself sends differently over RESP2 and RESP3: no client-side mapping can
 * give one the other's value (docs/resp3.md lists them). Keyed by the command line.
 */
const KNOWN_DIFFERENCES: Record<string, string> = {
  'HELLO': 'the reply names the protocol in force: proto 2 or 3',
  'HELLO 2': 'switches the connection to RESP2 and says so (proto); the RESP3 connection is RESP2 afterwards',
  'CLIENT INFO': 'resp=2 or resp=3 (and the connection\'s own id, address, age)',
  'DEBUG PROTOCOL push': 'RESP2 has no push type: an error over RESP2; over RESP3 a push frame (to the push handler) then a string',
  // Not the server's doing but a limit of the client, listed with them: EXEC sent as a plain
  // command cannot know what MULTI queued, so the few replies RESP3 nests otherwise keep their
  // RESP3 nesting inside it. loop.multi() and transactions know, and map them (the blocks above).
  'MULTI ZRANGE HGETALL ZSCORE XREAD INCR EXEC (sent one by one)': 'EXEC as a plain command: see docs/resp3.md',
};

const key = (cmd: Cmd) => cmd.join(' ');

describe('RESP3 differential: every command has its RESP2 shape over RESP3', function () {
  this.timeout(300_000);
  let server: RedisServer;
  let loop: EventLoop;
  let p2: Connection;
  let p3: Connection;

  before(async () => {
    server = await startRedis({ args: ['--enable-debug-command', 'yes'] });
    loop = new EventLoop();
    p2 = loop.connect({ url: server.url, protocol: 2 });
    p3 = loop.connect({ url: server.url, protocol: 3 });
    await Future.all([loop.sendCommand(p2, 'PING'), loop.sendCommand(p3, 'PING')]);
    expect(p2.protocol).to.equal(2);
    expect(p3.protocol).to.equal(3);
  });
  after(async () => {
    await loop.close();
    await server.stop();
  });

  /** The fixture, the case's setup, then its command; its value or its error (as text). */
  async function run(conn: Connection, test: Case, returnBuffers: boolean): Promise<unknown> {
    loop.sendCommand(conn, 'FLUSHALL').catch(() => {});
    loop.sendCommand(conn, 'SCRIPT', 'FLUSH').catch(() => {});
    loop.sendCommand(conn, 'FUNCTION', 'FLUSH').catch(() => {});
    loop.sendCommand(conn, 'ACL', 'DELUSER', 'alice').catch(() => {});
    for (const cmd of [...FIXTURE, ...(test.setup ?? [])]) loop.send(conn, cmd as [string, ...string[]]).catch(() => {});
    try {
      if (test.block !== undefined) return await loop.multi(conn, test.block as [string, ...string[]][], { returnBuffers });
      return await loop.send(conn, (test.raw ?? test.cmd) as [string, ...string[]], { returnBuffers });
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  }

  for (const returnBuffers of [false, true]) {
    it(`${CORPUS.length} commands, ${returnBuffers ? 'as Buffers' : 'as strings'}: equal values, or a known server-made difference`, async () => {
      const mismatches: string[] = [];
      const knownSeen = new Set<string>();
      for (const test of CORPUS) {
        const name = key(test.cmd);
        let two = await run(p2, test, returnBuffers);
        let three = await run(p3, test, returnBuffers);
        if (test.stable !== undefined) {
          two = test.stable(two);
          three = test.stable(three);
        }
        if (name === 'HELLO 2') {
          // It switched p3 to RESP2: back to RESP3 for the rest of the corpus.
          await loop.send(p3, ['HELLO', '3']);
          expect(p3.protocol).to.equal(3);
        }
        let same = true;
        try {
          expect(three).to.deep.equal(two);
        } catch {
          same = false;
        }
        if (KNOWN_DIFFERENCES[name] !== undefined) {
          if (same) mismatches.push(`${name}: listed as a server-made difference, but the values are equal`);
          knownSeen.add(name);
          continue;
        }
        if (!same) mismatches.push(`${name}:\n  RESP2 ${show(two)}\n  RESP3 ${show(three)}`);
      }
      expect(mismatches, mismatches.join('\n')).to.deep.equal([]);
      expect([...knownSeen].sort()).to.deep.equal(Object.keys(KNOWN_DIFFERENCES).sort());
    });
  }

  it('the corpus is several hundred commands over every data type', () => {
    expect(CORPUS.length).to.be.greaterThan(300);
  });
});

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Error ? `Error(${x.message})` : x))?.slice(0, 600) ?? String(v);
}
