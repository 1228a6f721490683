// CommonJS users: `require('redloop')` loads the ES module build (Node 20.19+ can require() an
// ES module that has no top-level await). Resolved by package name, through package.json's
// "exports", exactly as an application's require() would.
const { expect } = require('chai');
const redloop = require('redloop');
const { startRedis } = require('../dist/harness/redis.js');

describe('require() from CommonJS', () => {
  it('require("redloop") gives the same API as import, and it talks to a real server', async () => {
    const esm = await import('redloop');
    expect(Object.keys(redloop).sort()).to.deep.equal(Object.keys(esm).sort());
    expect(redloop.EventLoop).to.equal(esm.EventLoop); // one module instance, not a second copy

    const server = await startRedis();
    const loop = new redloop.EventLoop();
    try {
      const conn = loop.connect(server.url);
      loop.sendCommand(conn, 'SET', 'cjs', 'works');
      expect(await loop.sendCommand(conn, 'GET', 'cjs')).to.equal('works');
    } finally {
      await loop.close();
      await server.stop();
    }
  });
});
