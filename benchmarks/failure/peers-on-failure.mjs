// How ioredis and node-redis (the versions in devDependencies) behave in the failure cases of
// the README's "When things go wrong" table, against the same throwaway servers the tests use.
// Not part of the test suite (it describes other libraries):
// run `npx tsc -p . && node docs/peers-on-failure.mjs`.
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { rawCommand, startRedis } from '../../dist/harness/index.js';
import { resp, startFakeServer } from '../../dist/harness/fake-server.js';

const require = createRequire(import.meta.url);
const IORedis = require('ioredis').default ?? require('ioredis');
const { createClient } = require('redis');
const versions = `ioredis ${require('ioredis/package.json').version}, node-redis ${require('redis/package.json').version}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const settle = (p) => Promise.resolve(p).then((v) => `resolved ${JSON.stringify(v)}`, (e) => `rejected ${e.name}: ${e.message}`);
const show = (p, ms = 2000) => Promise.race([settle(p), sleep(ms).then(() => `still pending after ${ms} ms`)]);
const clients = {
  ioredis: {
    open: async (port, password) => { const c = new IORedis({ port, password, lazyConnect: true }); c.on('error', () => {}); await c.connect(); return c; },
    blpop: (c, key) => c.blpop(key, 0), id: (c) => c.client('ID'), echo: (c, v) => c.echo(v), close: (c) => c.disconnect(),
  },
  'node-redis': {
    open: async (port, password) => { const c = createClient({ url: `redis://:${password}@127.0.0.1:${port}` }); c.on('error', () => {}); await c.connect(); return c; },
    blpop: (c, key) => c.blPop(key, 0), id: (c) => c.clientId(), echo: (c, v) => c.echo(v), close: (c) => c.destroy(),
  },
};

console.log(versions);
const server = await startRedis({ args: ['--requirepass', 'right'] });
for (const [name, k] of Object.entries(clients)) {
  // A command in flight when the connection is killed: re-sent (takes the element) or rejected?
  const c = await k.open(server.port, 'right');
  const id = await k.id(c);
  const blpop = settle(k.blpop(c, `q-${name}`));
  await sleep(100);
  await rawCommand(server.endpoint, 'CLIENT', 'KILL', 'ID', String(id));
  await sleep(500);
  await rawCommand(server.endpoint, 'LPUSH', `q-${name}`, 'x');
  console.log(`${name}: BLPOP in flight at CLIENT KILL: ${await Promise.race([blpop, sleep(1000).then(() => 'still pending')])}; element left in the list: ${await rawCommand(server.endpoint, 'LLEN', `q-${name}`)}`);
  k.close(c);
}
{
  let errors = 0; let reconnects = 0;
  const c = new IORedis({ port: server.port, password: 'wrong' });
  c.on('error', () => errors++); c.on('reconnecting', () => reconnects++);
  console.log(`ioredis: wrong password: PING ${await show(c.ping(), 3000)}; ${errors} error events, ${reconnects} reconnects`);
  c.disconnect();
}
{
  let errors = 0; let reconnects = 0;
  const c = createClient({ socket: { port: server.port }, password: 'wrong' });
  c.on('error', () => errors++); c.on('reconnecting', () => reconnects++);
  console.log(`node-redis: wrong password: connect() ${await show(c.connect(), 3000)}; ${errors} error events, ${reconnects} reconnects in 3 s`);
  try { c.destroy(); } catch { /* not open */ }
}
{
  const a = new IORedis({ port: 1, password: 'Hunter2Secret', lazyConnect: true });
  const b = createClient({ url: 'redis://:Hunter2Secret@127.0.0.1:1' });
  console.log(`util.inspect shows the password: ioredis ${inspect(a, { depth: 4 }).includes('Hunter2Secret')}, node-redis ${inspect(b, { depth: 4 }).includes('Hunter2Secret')}`);
}
await server.stop();

const paused = await startRedis();
{
  const c = new IORedis({ port: paused.port, commandTimeout: 200 }); c.on('error', () => {});
  await c.ping();
  paused.kill('SIGSTOP');
  const r = await show(c.echo('a'));
  paused.kill('SIGCONT');
  console.log(`ioredis: commandTimeout 200 on a SIGSTOPped server: ${r}; next command: ${await show(c.echo('b'))}`);
  c.disconnect();
}
{
  const c = createClient({ socket: { port: paused.port } }); c.on('error', () => {});
  await c.connect();
  paused.kill('SIGSTOP');
  const r = await show(c.withCommandOptions({ timeout: 200 }).echo('a'));
  paused.kill('SIGCONT');
  console.log(`node-redis: { timeout: 200 } on a SIGSTOPped server: ${r}`);
  c.destroy();
}
await paused.stop();

for (const name of Object.keys(clients)) {
  const fake = await startFakeServer({ onCommand: (cmd, client) => {
    if (cmd[0] === 'HELLO') return resp.error('ERR unknown command');
    if (cmd[0] === 'GARBAGE' && client.index === 1) return '?garbage\r\n';
    return undefined;
  } });
  const c = name === 'ioredis'
    ? new IORedis({ port: fake.port, protocol: 2, disableClientInfo: true })
    : createClient({ socket: { port: fake.port }, RESP: 2, disableClientInfo: true });
  c.on('error', () => {});
  if (name === 'node-redis') await c.connect();
  const a = show(c.echo('a'));
  const g = show(name === 'ioredis' ? c.call('GARBAGE') : c.sendCommand(['GARBAGE']));
  const b = show(c.echo('b'));
  console.log(`${name}: bytes that are not RESP: ECHO a ${await a} | GARBAGE ${await g} | ECHO b ${await b}; next ECHO ${await show(c.echo('after'))}; connections: ${fake.connectionCount}`);
  try { name === 'ioredis' ? c.disconnect() : c.destroy(); } catch { /* closed */ }
  await fake.close();
}
process.exit(0);
