// Mocha root hooks (registered in .mocharc.json "require"): whatever a failed test left
// running is stopped once the whole run ends.
import { stopAllServers } from '../../harness/redis.js';
import { removeTlsMaterial } from '../../harness/tls-certs.js';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopAllServers();
    removeTlsMaterial();
  },
};
