/**
 * List answers are bounded by bytes as well as count over HTTP: `limit=1000` on a thread whose
 * runs carry 100,000-character inputs answers a page of about a megabyte with a cursor, and the
 * cursors lead through every run and message exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PAGE_MAX_BYTES } from '../../src/store/paging.ts';
import { json, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface Page {
  data: { id: string; seq?: number }[];
  nextCursor: string | null;
}

describe('list answers bounded by bytes', () => {
  let f: Fixture;
  let threadId: string;
  const runIds: string[] = [];
  before(async () => {
    f = await serverFixture();
    await f.pool.agents.create('default', { name: 'echo' });
    threadId = (await f.pool.threads.create('default')).id;
    const runs: { id: string; createdAt: number }[] = [];
    for (let i = 0; i < 14; i++) {
      const input = `${i} ${'x'.repeat(99_990)}`;
      const handle = await f.pool.runs.start('default', 'echo', { input, threadId });
      runs.push(await handle.result);
    }
    // The listing's order: newest first, and by id among runs of the same millisecond.
    runs.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    runIds.push(...runs.map((r) => r.id));
  });
  after(() => f.close());

  async function follow(path: string): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let pages = 0;
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await f.app.inject({ url: `${path}?limit=1000${query}` });
      assert.equal(res.statusCode, 200);
      assert.ok(res.body.length < PAGE_MAX_BYTES + 1024, `an answer of ${res.body.length} bytes`);
      const page = json<Page>(res);
      ids.push(...page.data.map((item) => item.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null);
    return { ids, pages };
  }

  it('GET /v1/threads/{id}/runs?limit=1000 answers under the budget, with a cursor that continues correctly', async () => {
    const { ids, pages } = await follow(`/v1/threads/${threadId}/runs`);
    assert.ok(pages >= 2, `${pages} pages`);
    assert.deepEqual(ids, runIds);
  });

  it('GET /v1/threads/{id}/messages?limit=1000 likewise', async () => {
    const { ids, pages } = await follow(`/v1/threads/${threadId}/messages`);
    assert.ok(pages >= 2, `${pages} pages`);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(ids.length, (await f.pool.threads.get('default', threadId)).messageCount);
  });
});
