/**
 * Runs the project-data conformance suite against the SQLite adapters sharing one real file, plus
 * what only SQLite shows: the thread walk goes through the project's own threads (its index), in
 * bounded steps, however they are spread among other projects'.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SqliteProjectStore } from '../../src/store/sqlite-projects.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { projectDataConformance } from './project-data.conformance.ts';

function open() {
  const dir = mkdtempSync(join(tmpdir(), 'agentpool-project-data-'));
  const path = join(dir, 'agentpool.db');
  const stores = {
    agents: new SqliteAgentStore({ path }),
    runs: new SqliteRunStore({ path }),
    projects: new SqliteProjectStore({ path }),
  };
  return {
    stores,
    cleanup: async () => {
      try {
        await Promise.all([stores.agents.close(), stores.runs.close(), stores.projects.close()]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

projectDataConformance('SQLite stores on one file', async () => open());

describe('SQLite thread walk', () => {
  it('visits only the project’s threads, in steps of at most `limit`, wherever they are among others', async () => {
    const { stores, cleanup } = open();
    try {
      // 1 of every 10 threads is the project's: the walk steps through those 25 alone.
      for (let i = 0; i < 250; i++) {
        const project = i % 10 === 3 ? 'gone' : 'other';
        const id = `thr_${String(i).padStart(6, '0')}`;
        await stores.runs.createThread({ id, project, metadata: {}, ttlSeconds: null, now: 0 });
      }
      let cursor: string | undefined;
      const found: number[] = [];
      do {
        const step = await stores.runs.deleteProjectThreads('gone', { limit: 20, cursor });
        found.push(step.threads);
        cursor = step.nextCursor ?? undefined;
      } while (cursor !== undefined);
      assert.deepEqual(found, [20, 5], "the project's 25 threads by 20, the other 225 never examined");
      const left = await stores.runs.countProjectThreads('other', { limit: 1000 });
      assert.deepEqual(left, { count: 225, nextCursor: null });
    } finally {
      await cleanup();
    }
  });
});
