/**
 * How many times a run touches the store, on a real SQLite file: a wait run on one node is
 * written once, with its first step or its end (docs/runs.md, "What a crash may cost"); a
 * background run is written before it is answered; a new thread's first run reads nothing; and a
 * run not yet written is still answered by `runs.get` on its node.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { textOf } from '../../src/run/messages.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { SqliteRunStore } from '../../src/store/sqlite-runs.ts';
import type { RunStore } from '../../src/store/ports.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';
import { MODEL, P, testTools } from '../support/run-fixture.ts';
import { tempDir } from '../support/temp-dir.ts';

/** The RunStore methods that read a thread or a run, and those that write one. */
const READS = new Set(['getThread', 'recentMessages', 'listMessages', 'getRun', 'listRuns']);
const WRITES = new Set(['createThread', 'createRun', 'commitStep']);

/** A run store that records which of its reads and writes are called, in order. */
function counted(store: RunStore): { store: RunStore; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (typeof name === 'string' && (READS.has(name) || WRITES.has(name))) calls.push(name);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

describe('the writes and reads of a run (SQLite)', () => {
  const tmp = tempDir('agentpool-run-writes-');
  let fake: FakeOpenAI;
  let pool: AgentPool;
  let runs: SqliteRunStore;
  let calls: string[];

  before(async () => {
    fake = await startFakeOpenAI();
    const path = join(tmp.dir, 'agentpool.db');
    runs = new SqliteRunStore({ path });
    const c = counted(runs);
    calls = c.calls;
    pool = await createAgentPool({
      store: { agents: new SqliteAgentStore({ path }), runs: c.store },
      models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'k' } }, env: {} },
      tools: { tools: testTools().tools },
    });
    await pool.agents.create(P, { name: 'plain', model: MODEL, instructions: 'Be brief.' });
    await pool.agents.create(P, { name: 'tooled', model: MODEL, tools: ['custom:add'] });
  });
  after(async () => {
    await pool.close();
    await fake.close();
    tmp.cleanup();
  });
  beforeEach(() => {
    calls.length = 0;
  });

  /** The thread's messages as `role:text`. */
  const messages = async (threadId: string) =>
    (await runs.listMessages(threadId, { limit: 100 })).data.map((m) => `${m.role}:${textOf(m.content)}`);

  it('a wait run on a new thread reads nothing and writes once: its record, its input and its answer', async () => {
    const thread = await pool.threads.create(P);
    assert.deepEqual(calls, ['createThread']);
    calls.length = 0;
    fake.script({ text: 'Hi.' });
    const run = await (await pool.runs.start(P, 'plain', { input: 'hello', threadId: thread.id })).result;
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(calls, ['createRun']);
    assert.deepEqual(await runs.getRun(run.id), run);
    assert.deepEqual(await messages(thread.id), ['user:hello', 'assistant:Hi.']);
  });

  it('the next run on that thread reads nothing either: its history is what this pool wrote', async () => {
    const thread = await pool.threads.create(P);
    fake.script({ text: 'One.' }, { text: 'Two.' });
    await (
      await pool.runs.start(P, 'plain', { input: 'first', threadId: thread.id })
    ).result;
    calls.length = 0;
    const run = await (await pool.runs.start(P, 'plain', { input: 'second', threadId: thread.id })).result;
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(calls, ['createRun']);
    const sent = fake.requests.at(-1)?.messages.map((m) => `${m.role}:${String(m.content)}`);
    assert.deepEqual(sent, ['system:Be brief.', 'user:first', 'assistant:One.', 'user:second']);
  });

  it('a wait run asking for a new thread writes it with its record, input and answer, at once', async () => {
    fake.script({ text: 'Hi.' }, { text: 'Again.' });
    const options = { input: 'hello', thread: { metadata: { topic: 'greeting' }, ttlSeconds: 3600 } };
    const run = await (await pool.runs.start(P, 'plain', options)).result;
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(calls, ['createRun'], 'one write, and nothing read');
    assert.match(run.threadId ?? '', /^thr_/);
    const thread = await pool.threads.get(P, run.threadId as string);
    assert.deepEqual(
      [thread.metadata, thread.ttlSeconds, thread.messageCount],
      [{ topic: 'greeting' }, 3600, 2],
    );
    assert.deepEqual(await messages(thread.id), ['user:hello', 'assistant:Hi.']);
    calls.length = 0;
    await (
      await pool.runs.start(P, 'plain', { input: 'more', threadId: thread.id })
    ).result;
    assert.deepEqual(calls, ['createRun'], 'its next run reads nothing either');
    const sent = fake.requests.at(-1)?.messages.map((m) => `${m.role}:${String(m.content)}`);
    assert.deepEqual(sent, ['system:Be brief.', 'user:hello', 'assistant:Hi.', 'user:more']);
  });

  it('a run asking for a new thread is refused with threadId or store: false, and bad options name their field', async () => {
    const thread = await pool.threads.create(P);
    calls.length = 0;
    const refused = async (options: Parameters<AgentPool['runs']['start']>[2], field: string) =>
      assert.rejects(
        pool.runs.start(P, 'plain', options),
        (err: { code?: string; details?: { field?: string } }) => {
          assert.deepEqual([err.code, err.details?.field], ['VALIDATION_FAILED', field]);
          return true;
        },
      );
    await refused({ input: 'x', thread: {}, threadId: thread.id }, 'thread');
    await refused({ input: 'x', thread: {}, store: false }, 'thread');
    await refused({ input: 'x', thread: { ttlSeconds: 0 } }, 'thread.ttlSeconds');
    await refused({ input: 'x', thread: { colour: 'red' } as never }, 'thread.colour');
    await refused({ input: 'x', thread: 'new' as never }, 'thread');
    assert.deepEqual(calls, [], 'nothing written, nothing read');
  });

  it('a run refused before it is written creates no thread; a failed run keeps its thread', async () => {
    await assert.rejects(pool.runs.start(P, 'nobody', { input: 'x', thread: {} }), {
      code: 'AGENT_NOT_FOUND',
    });
    assert.deepEqual(calls, []);
    fake.script({ status: 400, body: { error: { message: 'no' } } });
    const failed = await (await pool.runs.start(P, 'plain', { input: 'fails', thread: {} })).result;
    assert.equal(failed.status, 'failed');
    assert.deepEqual(calls, ['createRun']);
    assert.equal((await pool.threads.get(P, failed.threadId as string)).messageCount, 2);
  });

  it('a background run asking for a new thread is in the store, thread and all, when it is answered', async () => {
    fake.script({ delayMs: 100, then: { text: 'Later.' } });
    const accepted = await pool.runs.startBackground(P, 'plain', {
      input: 'later',
      thread: { metadata: { b: 1 } },
    });
    assert.deepEqual(calls, ['createRun']);
    assert.equal((await runs.getRun(accepted.id))?.threadId, accepted.threadId);
    assert.deepEqual((await runs.getThread(accepted.threadId as string))?.metadata, { b: 1 });
    await pool.runs.idle();
    assert.deepEqual(await messages(accepted.threadId as string), ['user:later', 'assistant:Later.']);
  });

  it('a tool run writes its first step with its input, then its answer', async () => {
    const thread = await pool.threads.create(P);
    calls.length = 0;
    fake.script({ toolCalls: [{ name: 'add', arguments: { a: 2, b: 3 } }] }, { text: '5' });
    const run = await (await pool.runs.start(P, 'tooled', { input: 'add', threadId: thread.id })).result;
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(calls, ['createRun', 'commitStep']);
    assert.deepEqual(
      (await runs.listMessages(thread.id, { limit: 100 })).data.map((m) => m.role),
      ['user', 'assistant', 'tool', 'assistant'],
    );
  });

  it('a run that keeps nothing is written once, without its input, output and metadata', async () => {
    fake.script({ text: 'Forgotten.' });
    const run = await (
      await pool.runs.start(P, 'plain', { input: 'secret', store: false, metadata: { k: 'v' } })
    ).result;
    assert.equal(run.output, 'Forgotten.');
    assert.deepEqual(calls, ['createRun']);
    const stored = await runs.getRun(run.id);
    assert.deepEqual(
      { input: stored?.input, output: stored?.output, metadata: stored?.metadata, cost: stored?.cost },
      { input: '', output: null, metadata: {}, cost: run.cost },
    );
  });

  it('a background run is in the store when it is answered', async () => {
    const thread = await pool.threads.create(P);
    fake.script({ delayMs: 200, then: { text: 'Later.' } });
    const accepted = await pool.runs.startBackground(P, 'plain', { input: 'later', threadId: thread.id });
    assert.equal((await runs.getRun(accepted.id))?.status, accepted.status);
    assert.deepEqual(await messages(thread.id), ['user:later'], 'its input too, once it holds the thread');
    await pool.runs.idle();
    assert.equal((await runs.getRun(accepted.id))?.status, 'succeeded');
  });

  it('until its first write, runs.get answers a wait run as it started; cancelled, it is written with a note', async () => {
    const thread = await pool.threads.create(P);
    fake.script({ hang: true });
    const handle = await pool.runs.start(P, 'plain', { input: 'wait', threadId: thread.id });
    while (fake.requests.at(-1)?.messages.at(-1)?.content !== 'wait') await sleep(5);
    assert.equal(await runs.getRun(handle.id), undefined, 'nothing written during its first model call');
    const live = await pool.runs.get(P, handle.id);
    assert.deepEqual([live.id, live.status, live.threadId], [handle.id, 'running', thread.id]);
    await assert.rejects(pool.runs.get('other', handle.id), { code: 'RUN_NOT_FOUND' });
    const cancelled = await pool.runs.cancel(P, handle.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.deepEqual(await runs.getRun(handle.id), cancelled);
    assert.deepEqual(await messages(thread.id), [
      'user:wait',
      'assistant:[no answer: the run ended with RUN_CANCELLED]',
    ]);
  });

  it('a run on a thread another connection wrote to checks the thread first', async () => {
    const thread = await pool.threads.create(P);
    fake.script({ text: 'One.' });
    await (
      await pool.runs.start(P, 'plain', { input: 'first', threadId: thread.id })
    ).result;
    // Another connection on the same file (another process) writes: the cache may be stale.
    const other = new SqliteRunStore({ path: runs.path });
    try {
      await other.createThread({
        id: 'thr_other',
        project: P,
        metadata: {},
        ttlSeconds: null,
        now: Date.now(),
      });
    } finally {
      await other.close();
    }
    calls.length = 0;
    fake.script({ text: 'Two.' });
    await (
      await pool.runs.start(P, 'plain', { input: 'second', threadId: thread.id })
    ).result;
    assert.deepEqual(calls, ['getThread', 'createRun']);
  });
});
