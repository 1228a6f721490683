export * from './redis.js';
export * from './cluster.js';
export * from './resp.js';
export * from './servers.js';
export { tlsMaterial, type TlsMaterial } from './tls-certs.js';
export * from './sentinel.js';
