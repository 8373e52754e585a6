import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type AgentPoolOptions, createAgentPool } from '../../src/agent-pool.ts';
import { ThreadHistoryCache } from '../../src/run/history-cache.ts';
import type { MessageRecord } from '../../src/store/ports.ts';
import { startFakeOpenAI } from '../support/fake-openai.ts';
import { tempDir } from '../support/temp-dir.ts';

const msg = (seq: number): MessageRecord => ({
  id: `msg_${seq}`,
  threadId: 't',
  seq,
  role: seq % 2 ? 'user' : 'assistant',
  content: [{ type: 'text', text: String(seq) }],
  runId: null,
  createdAt: seq,
});
const seqs = (ms: MessageRecord[] | undefined) => ms?.map((m) => m.seq);

describe('thread history cache', () => {
  it('serves a history only when it ends at the asked seq', () => {
    const cache = new ThreadHistoryCache({ maxThreads: 10, maxMessages: 10 });
    cache.set('p', 't', [msg(1), msg(2)]);
    assert.deepEqual(seqs(cache.get('t', 2)), [1, 2]);
    assert.equal(cache.get('t', 3), undefined);
    assert.equal(cache.get('other', 2), undefined);
  });

  it('extends on appends that continue it, and drops the thread on a gap', () => {
    const cache = new ThreadHistoryCache({ maxThreads: 10, maxMessages: 10 });
    cache.set('p', 't', [msg(1), msg(2)]);
    cache.appended('t', [msg(3), msg(4)]);
    assert.deepEqual(seqs(cache.get('t', 4)), [1, 2, 3, 4]);
    cache.appended('t', [msg(7)]); // 5 and 6 were written elsewhere
    assert.equal(cache.get('t', 7), undefined);
    assert.equal(cache.size, 0);
    cache.appended('t', [msg(8)]); // nothing cached: nothing to extend
    assert.equal(cache.size, 0);
  });

  it('keeps the newest maxMessages per thread and at most maxThreads threads, least recently used leaving first', () => {
    const cache = new ThreadHistoryCache({ maxThreads: 2, maxMessages: 3 });
    cache.set('p', 'a', [msg(1), msg(2), msg(3), msg(4)]);
    assert.deepEqual(seqs(cache.get('a', 4)), [2, 3, 4]);
    cache.appended('a', [msg(5)]);
    assert.deepEqual(seqs(cache.get('a', 5)), [3, 4, 5]);
    cache.set('p', 'b', [msg(1)]);
    cache.get('a', 5); // a is now the most recently used
    cache.set('p', 'c', [msg(1)]);
    assert.equal(cache.get('b', 1), undefined, 'b left first');
    assert.ok(cache.get('a', 5));
    assert.ok(cache.get('c', 1));
  });

  it('keeps the least recently used order when the newest thread is used again, or forgotten', () => {
    const cache = new ThreadHistoryCache({ maxThreads: 2, maxMessages: 3 });
    cache.set('p', 'a', [msg(1)], 0);
    cache.set('p', 'b', [msg(1)], 0);
    assert.deepEqual(seqs(cache.known('p', 'b', 0)?.slice()), [1], 'b again: already the newest');
    cache.set('p', 'b', [msg(1), msg(2)], 0); // replaced in place
    cache.set('p', 'c', [msg(1)]);
    assert.equal(cache.get('a', 1), undefined, 'a left first');
    assert.deepEqual(seqs(cache.get('b', 2)), [1, 2]);
    cache.delete('c'); // the newest forgotten
    cache.set('p', 'a', [msg(1)]);
    cache.get('b', 2);
    cache.set('p', 'd', [msg(1)]);
    assert.equal(cache.get('a', 1), undefined, 'a was the least recently used');
    assert.ok(cache.get('b', 2));
    assert.ok(cache.get('d', 1));
    const none = new ThreadHistoryCache({ maxThreads: 0, maxMessages: 3 });
    none.set('p', 'a', [msg(1)], 0);
    none.set('p', 'a', [msg(1)], 0);
    assert.equal(none.size, 0, 'maxThreads 0 keeps nothing');
  });

  it('hands out copies: a caller changing its array does not change the cache', () => {
    const cache = new ThreadHistoryCache({ maxThreads: 2, maxMessages: 3 });
    cache.set('p', 't', [msg(1)]);
    cache.get('t', 1)?.push(msg(2));
    assert.deepEqual(seqs(cache.get('t', 1)), [1]);
  });
});

describe('thread history with two pools on one SQLite file', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('never sends a stale history: what another process appended reaches the model', async () => {
    const fake = await startFakeOpenAI();
    cleanups.push(() => fake.close());
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const options: AgentPoolOptions = {
      dataDir: dir,
      models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'k' } }, env: {} },
    };
    const a = await createAgentPool(options);
    const b = await createAgentPool(options);
    cleanups.push(
      () => b.close(),
      () => a.close(),
    );
    await a.agents.create('default', { name: 'chat', model: 'openai-compatible/m' });
    const thread = await a.threads.create('default');
    const turn = async (pool: typeof a, text: string) => {
      const run = await (
        await pool.runs.start('default', 'chat', { input: text, threadId: thread.id })
      ).result;
      assert.equal(run.status, 'succeeded');
    };
    await turn(a, 'one'); // a caches the thread
    await turn(a, 'two'); // served from a's cache
    await turn(b, 'three'); // another process appends
    await turn(a, 'four'); // a must notice and read the store again
    const users = (fake.requests.at(-1)?.messages ?? [])
      .filter((m) => m.role === 'user')
      .map((m) => String(m.content));
    assert.deepEqual(users, ['one', 'two', 'three', 'four']);
    const second = fake.requests[1]?.messages.filter((m) => m.role === 'user').map((m) => String(m.content));
    assert.deepEqual(second, ['one', 'two']);
  });
});
