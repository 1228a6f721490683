// `npm run example [-- <name>]`: runs one example (default: pypredis) against throwaway
// redis-server processes, or against the servers in REDIS_URLS (comma-separated).
const EXAMPLES = ['pypredis', 'blocking', 'massinsert', 'cluster', 'opentelemetry', 'sentinel'];

const name = process.argv[2] ?? 'pypredis';
if (EXAMPLES.includes(name)) {
  await import(`./${name}.js`);
} else {
  process.stderr.write(`unknown example "${name}"; the examples are: ${EXAMPLES.join(', ')} (npm run example -- <name>)\n`);
  process.exitCode = 2;
}
