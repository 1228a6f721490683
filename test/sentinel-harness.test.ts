// Self-test of the Sentinel harness (harness/sentinel.ts). It talks to the servers with the raw
// RESP client only, so a failure here is the harness's, never lib/'s.
import fs from 'node:fs';
import { expect } from 'chai';
import { rawCommand, runningServers, startSentinels, type SentinelDeployment } from '../harness/index.js';

describe('sentinel harness (harness/sentinel.ts)', function () {
  this.timeout(120_000);
  let dep: SentinelDeployment;

  before(async () => {
    dep = await startSentinels({ password: 'data-pw', sentinelPassword: 's3cret' });
  });

  after(async () => {
    await dep?.stop();
  });

  it('starts 1 master, 2 replicas and 3 sentinels that agree on the master', async () => {
    expect(dep.nodes).to.have.length(3);
    expect(dep.sentinels).to.have.length(3);
    expect(dep.replicas).to.have.length(2);
    for (const s of dep.sentinels) expect(await dep.masterAddressOf(s)).to.equal(`${dep.master.host}:${dep.master.port}`);
    expect((await dep.master.command('ROLE') as unknown[])[0]).to.equal('master');
    for (const r of dep.replicas) expect((await r.command('ROLE') as unknown[])[0]).to.equal('slave');
  });

  it('has passwords on the sentinels and on the data nodes', async () => {
    const s = dep.sentinels[0]!;
    await rawCommand({ host: s.host, port: s.port }, 'SENTINEL', 'MASTERS').then(
      () => expect.fail('a sentinel answered without AUTH'),
      (err: Error) => expect(err.message).to.match(/NOAUTH/));
    await rawCommand({ host: dep.master.host, port: dep.master.port }, 'GET', 'k').then(
      () => expect.fail('a data node answered without AUTH'),
      (err: Error) => expect(err.message).to.match(/NOAUTH/));
    expect(dep.sentinelUrls[0]).to.match(/^redis:\/\/:s3cret@127\.0\.0\.1:\d+$/);
  });

  it('fails over on SENTINEL FAILOVER and reports the events', async () => {
    const log = dep.watch();
    try {
      const old = dep.master;
      const since = Date.now();
      const promoted = await dep.failover(true);
      expect(promoted).to.not.equal(old);
      expect((await promoted.command('ROLE') as unknown[])[0]).to.equal('master');
      expect((await old.command('ROLE') as unknown[])[0]).to.equal('slave');
      const sw = await log.next('+switch-master', since);
      expect(sw.message).to.contain(`${dep.name} ${old.host} ${old.port} ${promoted.host} ${promoted.port}`);
      expect(log.events.some((e) => e.channel === '+try-failover')).to.equal(true);
    } finally {
      log.stop();
    }
  });

  it('promotes a replica when the master is killed, and takes the old one back as a replica', async () => {
    const old = dep.master;
    const promoted = await dep.killMaster();
    expect(promoted).to.not.equal(old);
    expect(old.isRunning).to.equal(false);
    await dep.restart(old);
    expect((await old.command('ROLE') as unknown[])[0]).to.equal('slave');
    // Usually `promoted`; under heavy load a failover may exceed failover-timeout and be redone.
    expect(dep.master).to.not.equal(old);
    expect((await dep.master.command('ROLE') as unknown[])[0]).to.equal('master');
  });

  it('stop() leaves no process and no file behind', async function () {
    const other = await startSentinels({ replicas: 1, sentinels: 1, quorum: 1 });
    const pids = [...other.nodes, ...other.sentinels].map((s) => s.pid);
    const dirs = [...other.nodes, ...other.sentinels].map((s) => s.dir);
    await other.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).to.throw();
    for (const dir of dirs) expect(fs.existsSync(dir)).to.equal(false);
    expect(runningServers().filter((s) => pids.includes(s.pid))).to.have.length(0);
  });
});
