/**
 * Pages are bounded by bytes as well as by count, in every adapter and every listing a client
 * pages through: runs, messages, agents, versions, projects. A page of big records stops near
 * PAGE_MAX_BYTES of JSON, and its cursor continues right after the last record returned, so
 * following cursors yields every record exactly once, in order.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryProjectStore } from '../../src/store/memory-projects.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import { boundedPage, PAGE_MAX_BYTES } from '../../src/store/paging.ts';
import { POSTGRES_QUERY_CHANNEL, type PostgresQueryMessage } from '../../src/store/postgres/database.ts';
import type { AgentStore, Page, RunStore } from '../../src/store/ports.ts';
import type { ProjectStore } from '../../src/store/project-ports.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SqliteProjectStore } from '../../src/store/sqlite-projects.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import { runRecord } from '../support/run-record.ts';
import { postgresStores } from '../support/postgres-stores.ts';
import { storeOnTempFile } from '../support/sqlite-store.ts';

const T0 = Date.UTC(2026, 0, 1);
/** About 100 KB: 30 of them are ~3 MB, three pages' worth. */
const BIG = 'x'.repeat(100_000);
const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** Follows cursors from the first page to the last, checking each page's size on the way. */
async function everyPage<T>(
  list: (cursor?: string) => Promise<Page<T>>,
): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    pages++;
    assert.ok(page.data.length > 0, 'every page makes progress');
    assert.ok(bytesOf(page.data) <= PAGE_MAX_BYTES, `a page of ${bytesOf(page.data)} bytes`);
    items.push(...page.data);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return { items, pages };
}

type Opened<S> = Promise<{ store: S; cleanup(): Promise<void> }>;
const adapters: {
  name: string;
  runs: () => Opened<RunStore>;
  agents: () => Opened<AgentStore>;
  projects: () => Opened<ProjectStore>;
}[] = [
  {
    name: 'memory',
    runs: async () => ({ store: new MemoryRunStore(), cleanup: async () => undefined }),
    agents: async () => ({ store: new MemoryAgentStore(), cleanup: async () => undefined }),
    projects: async () => ({ store: new MemoryProjectStore(), cleanup: async () => undefined }),
  },
  {
    name: 'sqlite',
    runs: () => storeOnTempFile((path) => new SqliteRunStore({ path })),
    agents: () => storeOnTempFile((path) => new SqliteAgentStore({ path })),
    projects: () => storeOnTempFile((path) => new SqliteProjectStore({ path })),
  },
  {
    name: 'postgres',
    runs: async () => {
      const { stores, cleanup } = await postgresStores();
      return { store: stores.runs, cleanup };
    },
    agents: async () => {
      const { stores, cleanup } = await postgresStores();
      return { store: stores.agents, cleanup };
    },
    projects: async () => {
      const { stores, cleanup } = await postgresStores();
      return { store: stores.projects, cleanup };
    },
  },
];

/** Rows PostgreSQL sent for each statement while `fn` ran (node:diagnostics_channel). */
async function rowsSent(fn: () => Promise<unknown>): Promise<number[]> {
  const counts: number[] = [];
  const listener = (message: unknown) => counts.push((message as PostgresQueryMessage).rowCount ?? 0);
  diagnostics.subscribe(POSTGRES_QUERY_CHANNEL, listener);
  try {
    await fn();
  } finally {
    diagnostics.unsubscribe(POSTGRES_QUERY_CHANNEL, listener);
  }
  return counts;
}

describe('pages bounded by bytes', () => {
  it('takes the first item even when it alone passes the budget, so paging always makes progress', () => {
    const rows = ['a'.repeat(50), 'b', 'c'];
    const page = boundedPage(
      rows,
      10,
      (r) => r,
      (r) => r,
      20,
    );
    assert.deepEqual(page, { data: [rows[0]], nextCursor: rows[0] });
    assert.deepEqual(
      boundedPage(
        ['b', 'c'],
        10,
        (r) => r,
        (r) => r,
        20,
      ),
      { data: ['b', 'c'], nextCursor: null },
    );
    assert.deepEqual(
      boundedPage(
        ['b', 'c', 'd'],
        2,
        (r) => r,
        (r) => r,
        20,
      ),
      { data: ['b', 'c'], nextCursor: 'c' },
    );
  });

  it('postgres: rows past the budget stay on the server, so a page of big records moves about a megabyte', async () => {
    const { stores, cleanup } = await postgresStores();
    try {
      await stores.runs.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
      for (let i = 0; i < 30; i++) {
        const id = `run_${String(i).padStart(2, '0')}`;
        await stores.runs.createRun(
          runRecord({ id, threadId: 'thr_1', output: BIG, createdAt: T0 + i, startedAt: T0 + i }),
          [],
        );
      }
      let page: Page<unknown> | undefined;
      const sent = await rowsSent(async () => {
        page = await stores.runs.listRuns('thr_1', { limit: 1000 });
      });
      assert.equal(sent.length, 1, 'one statement');
      const taken = page?.data.length ?? 0;
      assert.ok(taken >= 9 && taken <= 10, `${taken} runs of ~100 KB in a page`);
      assert.equal(sent[0], taken + 1, 'the page and the one row that says more follow, not all 30');
    } finally {
      await cleanup();
    }
  });

  for (const adapter of adapters) {
    describe(`${adapter.name} adapters`, () => {
      it('runs of a thread: limit=1000 answers under the budget, and the cursors continue in order', async () => {
        const { store, cleanup } = await adapter.runs();
        try {
          await store.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
          const ids: string[] = [];
          for (let i = 0; i < 30; i++) {
            const id = `run_${String(i).padStart(2, '0')}`;
            ids.push(id);
            await store.createRun(
              runRecord({ id, threadId: 'thr_1', output: BIG, createdAt: T0 + i, startedAt: T0 + i }),
              [],
            );
          }
          const { items, pages } = await everyPage((cursor) =>
            store.listRuns('thr_1', { limit: 1000, ...(cursor !== undefined && { cursor }) }),
          );
          assert.ok(pages >= 3, `${pages} pages`);
          assert.deepEqual(
            items.map((r) => r.id),
            ids.reverse(),
            'newest first, each once',
          );
        } finally {
          await cleanup();
        }
      });

      it('messages of a thread', async () => {
        const { store, cleanup } = await adapter.runs();
        try {
          await store.createThread({ id: 'thr_1', project: 'p1', metadata: {}, ttlSeconds: null, now: T0 });
          const run = runRecord({ id: 'run_1', threadId: 'thr_1' });
          const messages = Array.from({ length: 30 }, (_, i) => ({
            id: `msg_${i}`,
            role: 'user' as const,
            content: BIG,
            runId: 'run_1',
            createdAt: T0,
          }));
          await store.createRun(run, messages);
          const { items, pages } = await everyPage((cursor) =>
            store.listMessages('thr_1', { limit: 1000, ...(cursor !== undefined && { cursor }) }),
          );
          assert.ok(pages >= 3);
          assert.deepEqual(
            items.map((m) => m.seq),
            Array.from({ length: 30 }, (_, i) => i + 1),
          );
        } finally {
          await cleanup();
        }
      });

      it('agents of a project, and the versions of an agent', async () => {
        const { store, cleanup } = await adapter.agents();
        try {
          const spec = (i: number) => ({ labels: { team: 'a' }, tier: 'auto', instructions: `${i}${BIG}` });
          for (let i = 0; i < 30; i++) {
            await store.create({
              id: `agt_${i}`,
              project: 'p1',
              name: `a${String(i).padStart(2, '0')}`,
              spec: spec(i),
              now: T0,
            });
          }
          const names = await everyPage((cursor) =>
            store.list('p1', { limit: 1000, ...(cursor !== undefined && { cursor }) }),
          );
          assert.ok(names.pages >= 3);
          assert.deepEqual(
            names.items.map((a) => a.name),
            Array.from({ length: 30 }, (_, i) => `a${String(i).padStart(2, '0')}`),
          );
          const labelled = await everyPage((cursor) =>
            store.list('p1', { limit: 1000, labels: { team: 'a' }, ...(cursor !== undefined && { cursor }) }),
          );
          assert.equal(labelled.items.length, 30);
          for (let v = 1; v < 30; v++) await store.addVersion('agt_0', v, spec(v), T0 + v);
          const versions = await everyPage((cursor) =>
            store.listVersions('agt_0', { limit: 1000, ...(cursor !== undefined && { cursor }) }),
          );
          assert.ok(versions.pages >= 3);
          assert.deepEqual(
            versions.items.map((v) => v.version),
            Array.from({ length: 30 }, (_, i) => 30 - i),
          );
        } finally {
          await cleanup();
        }
      });

      it('projects', async () => {
        const { store, cleanup } = await adapter.projects();
        try {
          const metadata = { notes: 'y'.repeat(16_000) };
          for (let i = 0; i < 150; i++) {
            await store.createProject({ id: `p${String(i).padStart(3, '0')}`, name: 'P', metadata, now: T0 });
          }
          const { items, pages } = await everyPage((cursor) =>
            store.listProjects({ limit: 1000, ...(cursor !== undefined && { cursor }) }),
          );
          assert.ok(pages >= 2);
          assert.equal(new Set(items.map((p) => p.id)).size, 150);
        } finally {
          await cleanup();
        }
      });
    });
  }
});
