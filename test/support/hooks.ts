// Mocha root hooks (registered in .mocharc.json "require"): whatever a failed test left
// running is stopped once the whole run ends.
import { stopAllServers } from './redis.js';
import { removeTlsMaterial } from './tls-certs.js';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopAllServers();
    removeTlsMaterial();
  },
};
