/**
 * A cluster's options: what they mean, their defaults, and how every node's connection is
 * opened (like the first seed: its URL's credentials and TLS, under the options).
 */
import { parseRedisUrl, type ConnectionOptions } from '../../base/options.js';
import { ConfigError } from '../../base/errors.js';
import type { NodeAddress } from './topology.js';

export type ReadFrom = 'master' | 'replica' | 'prefer-replica';

export interface ClusterOptions extends ConnectionOptions {
  /**
   * Where read-only commands (by the server's command flags) go: 'master' (default), 'replica'
   * (a replica of the slot's master, round robin, the master when it has none) or
   * 'prefer-replica' (a replica whose connection is ready, else the master).
   */
  readFrom?: ReadFrom;
  /** ms between slot-map refreshes when nothing else triggers one; 0 for never. Default 30000. */
  refreshInterval?: number;
  /** Most MOVED/ASK/TRYAGAIN redirections one command follows before it rejects. Default 16. */
  maxRedirections?: number;
  /**
   * ms a command keeps retrying while the cluster answers CLUSTERDOWN or no node serves its
   * slot (a master died and no replica is promoted yet); then it rejects. Default 30000.
   */
  clusterDownTimeout?: number;
  /**
   * Addresses the nodes announce mapped to addresses this client can reach:
   * `{ '10.0.0.5:6379': { host: '127.0.0.1', port: 7000 } }` or a function.
   */
  natMap?: Record<string, NodeAddress> | ((address: NodeAddress) => NodeAddress);
}

/** The options checked, with their defaults, and what each node connection is opened with. */
export interface ResolvedClusterOptions {
  readFrom: ReadFrom;
  refreshInterval: number;
  maxRedirections: number;
  clusterDownTimeout: number;
  natMap: ClusterOptions['natMap'];
  /** Connection options of every node (host and port aside). */
  template: ConnectionOptions;
  /** What each seed is opened with. */
  seeds: ConnectionOptions[];
  useTls: boolean;
}

/** Checks `options` (ConfigError naming what is wrong) and derives the node template from the first seed. */
export function resolveClusterOptions(seeds: ReadonlyArray<string | ConnectionOptions>, options: ClusterOptions = {}): ResolvedClusterOptions {
  const given: unknown = seeds;
  if (typeof given === 'string') throw new ConfigError(`cluster() takes an array of seeds: loop.cluster(['${given.length <= 64 && !given.includes('@') ? given : 'redis://host:port'}'])`);
  if (!Array.isArray(seeds) || seeds.length === 0) throw new ConfigError('cluster() needs at least one seed: a redis:// URL or connection options of one node');
  if (options === null || typeof options !== 'object') throw new ConfigError('cluster options must be an object');
  const { readFrom = 'master', refreshInterval = 30_000, maxRedirections = 16, clusterDownTimeout = 30_000, natMap, ...connOptions } = options;
  if (!['master', 'replica', 'prefer-replica'].includes(readFrom)) throw new ConfigError(`readFrom must be 'master', 'replica' or 'prefer-replica', got ${String(readFrom)}`);
  for (const [k, v] of Object.entries({ refreshInterval, maxRedirections, clusterDownTimeout })) {
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ConfigError(`${k} must be a non-negative number, got ${String(v)}`);
  }
  if (natMap !== undefined && typeof natMap !== 'function' && (typeof natMap !== 'object' || natMap === null)) throw new ConfigError('natMap must be an object or a function');

  // Every node is opened like the first seed: its URL's credentials and TLS, under the options.
  const first = seeds[0]!;
  const seedBase: ConnectionOptions = typeof first === 'string' ? parseRedisUrl(first) : { ...first };
  const { host: _h, port: _p, path: _path, url, ...fromSeed } = seedBase;
  const fromUrl = url !== undefined ? (({ host: _uh, port: _up, path: _upath, ...rest }) => rest)(parseRedisUrl(url)) : {};
  const template: ConnectionOptions = { ...fromUrl, ...fromSeed, ...connOptions };
  return {
    readFrom, refreshInterval, maxRedirections, clusterDownTimeout, natMap, template,
    seeds: seeds.map((seed) => (typeof seed === 'string' ? { ...template, url: seed, ...connOptions } : { ...template, ...seed })),
    useTls: template.tls !== undefined && template.tls !== false,
  };
}
