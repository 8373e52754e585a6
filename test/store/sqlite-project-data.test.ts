/**
 * Runs the project-data conformance suite against the SQLite adapters sharing one real file, plus
 * what only SQLite shows: the thread walk reads each thread once in bounded steps, however the
 * project's threads are spread among other projects'.
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
  it('visits every thread once, in steps of at most `limit`, wherever the project’s threads are', async () => {
    const { stores, cleanup } = open();
    try {
      // 1 of every 10 threads is the project's: most steps find none and still go on.
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
      assert.equal(found.length, 13, '250 threads by 20: 12 full steps and a last short one');
      assert.equal(
        found.reduce((a, b) => a + b, 0),
        25,
      );
      const left = await stores.runs.countProjectThreads('other', { limit: 1000 });
      assert.deepEqual(left, { count: 225, nextCursor: null });
    } finally {
      await cleanup();
    }
  });
});
