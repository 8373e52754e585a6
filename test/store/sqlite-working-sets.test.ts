/**
 * Runs the working-set store conformance suite against the SQLite adapter on a real file, plus
 * what only a file shows: a checkpoint outlives the connection that wrote it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SqliteWorkingSetStore } from '../../src/store/sqlite-working-sets.ts';
import { openSqliteStores } from '../../src/store/sqlite-stores.ts';
import { storeOnTempFile } from '../support/sqlite-store.ts';
import { tempDir } from '../support/temp-dir.ts';
import { checkpointOf, workingSetStoreConformance } from './working-set-store.conformance.ts';

workingSetStoreConformance('SQLite', () => storeOnTempFile((path) => new SqliteWorkingSetStore({ path })));

describe('SQLite working-set store', () => {
  it('keeps a checkpoint across connections to the file, next to the other stores', async () => {
    const dir = tempDir();
    try {
      const path = `${dir.dir}/agentpool.db`;
      const first = openSqliteStores(path, { workingSets: true });
      await first.workingSets!.saveWorkingSet(checkpointOf('local', 7));
      await Promise.all([
        first.agents.close(),
        first.runs.close(),
        first.projects.close(),
        first.workingSets!.close(),
      ]);
      const again = new SqliteWorkingSetStore({ path });
      try {
        assert.deepEqual(await again.loadWorkingSet('local'), checkpointOf('local', 7));
      } finally {
        await again.close();
      }
    } finally {
      dir.cleanup();
    }
  });
});
