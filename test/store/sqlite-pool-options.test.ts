/**
 * `createAgentPool({ sqlite })`: the SQLite store's locking mode as a pool option, and a clear
 * refusal of the option with another store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAgentPool } from '../../src/agent-pool.ts';
import { tempDir } from '../support/temp-dir.ts';

describe('createAgentPool({ sqlite })', () => {
  it("with lockingMode 'exclusive' the pool owns its file: a second pool on it is refused until it closes", async () => {
    const { dir, cleanup } = tempDir('agentpool-exclusive-');
    try {
      const pool = await createAgentPool({
        dataDir: dir,
        sqlite: { lockingMode: 'exclusive' },
        models: { env: {} },
      });
      await pool.agents.create('default', { name: 'a', model: 'demo/echo' });
      await assert.rejects(createAgentPool({ dataDir: dir, models: { env: {} } }), /locked|busy/i);
      await pool.close();
      const again = await createAgentPool({ dataDir: dir, models: { env: {} } });
      assert.equal(await again.agents.count('default'), 1);
      await again.close();
    } finally {
      cleanup();
    }
  });

  it('refuses an unknown locking mode, and the option with another store', async () => {
    await assert.rejects(createAgentPool({ store: 'memory', sqlite: { lockingMode: 'exclusive' } }), {
      code: 'VALIDATION_FAILED',
      message: /sqlite.*only used with store 'sqlite'/,
    });
    const { dir, cleanup } = tempDir('agentpool-exclusive-');
    try {
      await assert.rejects(
        createAgentPool({ dataDir: dir, sqlite: { lockingMode: 'solo' as 'exclusive' } }),
        (err: unknown) => (err as { details?: { field?: string } }).details?.field === 'sqlite.lockingMode',
      );
    } finally {
      cleanup();
    }
  });
});
