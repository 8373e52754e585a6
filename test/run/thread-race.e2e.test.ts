import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { MultitaskStrategy } from '../../src/coordination/thread-gate.ts';
import type { MessageRecord, RunRecord } from '../../src/store/ports.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

type Fixture = Awaited<ReturnType<typeof runFixture>>;

/** Every run's messages form one contiguous block that opens with its user message. */
function assertNoInterleaving(messages: readonly MessageRecord[]): void {
  assert.deepEqual(
    messages.map((m) => m.seq),
    messages.map((_, i) => i + 1),
    'seqs are 1..n',
  );
  const seen = new Set<string | null>();
  let current: string | null | undefined;
  for (const m of messages) {
    if (m.runId !== current) {
      assert.ok(!seen.has(m.runId), `run ${m.runId} has messages in two places`);
      assert.equal(m.role, 'user', `run ${m.runId}'s block opens with its user message`);
      seen.add(m.runId);
      current = m.runId;
    }
  }
}

async function race(f: Fixture, strategy: MultitaskStrategy, n = 50) {
  const thread = await f.pool.threads.create(P);
  const started = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      f.pool.runs.start(P, 'chat', { input: `message ${i}`, threadId: thread.id, multitask: strategy }),
    ),
  );
  const runs: RunRecord[] = [];
  for (const s of started) if (s.status === 'fulfilled') runs.push(await s.value.result);
  const messages: MessageRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await f.pool.threads.messages(P, thread.id, { limit: 1000, ...(cursor && { cursor }) });
    messages.push(...page.data);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { started, runs, messages, thread };
}

describe('one run per thread: 50 concurrent runs on one thread', () => {
  let f: Fixture;
  before(async () => {
    f = await runFixture();
    f.fake.script(); // echo replies
    await f.pool.agents.create(P, { name: 'chat', model: MODEL });
  });
  after(() => f.close());

  it('enqueue: all run, one after another, in arrival order, never interleaving', async () => {
    const { started, runs, messages } = await race(f, 'enqueue');
    assert.ok(started.every((s) => s.status === 'fulfilled'));
    assert.equal(runs.length, 50);
    assert.ok(runs.every((r) => r.status === 'succeeded'));
    assert.equal(messages.length, 100);
    assertNoInterleaving(messages);
    const order = messages.filter((m) => m.role === 'user').map((m) => m.runId);
    const byStart = [...runs]
      .sort((a, b) => a.startedAt! - b.startedAt! || (a.id < b.id ? -1 : 1))
      .map((r) => r.id);
    assert.deepEqual(order, byStart);
  });

  it('reject: the thread serves one run; the others fail with THREAD_BUSY and leave no record', async () => {
    const { started, runs, messages, thread } = await race(f, 'reject');
    const busy = started.filter((s) => s.status === 'rejected');
    assert.ok(busy.every((s) => s.status === 'rejected' && isAgentPoolError(s.reason, 'THREAD_BUSY')));
    assert.ok(runs.length >= 1 && runs.every((r) => r.status === 'succeeded'));
    assert.ok(busy.length > 0, 'runs arriving while the thread was held were refused');
    assert.equal(messages.length, 2 * runs.length, 'only the runs that ran left messages');
    assert.equal((await f.pool.threads.runs(P, thread.id, { limit: 100 })).data.length, runs.length);
    assertNoInterleaving(messages);
  });

  it('interrupt: the newest run wins; the others end interrupted; messages never interleave', async () => {
    const { started, runs, messages } = await race(f, 'interrupt');
    assert.ok(started.every((s) => s.status === 'fulfilled'));
    assert.ok(runs.every((r) => r.status === 'succeeded' || r.status === 'interrupted'));
    const succeeded = runs.filter((r) => r.status === 'succeeded');
    assert.ok(succeeded.length >= 1);
    assert.ok(
      runs.filter((r) => r.status === 'interrupted').every((r) => r.error?.code === 'RUN_INTERRUPTED'),
    );
    assertNoInterleaving(messages);
    const last = messages.at(-1);
    assert.equal(last?.role, 'assistant');
    assert.ok(
      succeeded.some((r) => r.id === last?.runId),
      'the thread ends with a succeeded run',
    );
  });

  it('refuses to delete a thread while a run holds it', async () => {
    f.fake.script({ delayMs: 200, then: { text: 'slow' } });
    const thread = await f.pool.threads.create(P);
    const handle = await f.pool.runs.start(P, 'chat', { input: 'hold on', threadId: thread.id });
    for await (const e of handle.stream.events()) if (e.type === 'run.started') break;
    await assert.rejects(f.pool.threads.delete(P, thread.id), (e) => isAgentPoolError(e, 'THREAD_BUSY'));
    await handle.result;
    await f.pool.threads.delete(P, thread.id);
    await assert.rejects(f.pool.threads.get(P, thread.id), (e) => isAgentPoolError(e, 'THREAD_NOT_FOUND'));
  });
});
