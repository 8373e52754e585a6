/**
 * A thread stays a conversation every provider accepts, whatever happened to its runs: a run that
 * ends without an answer after its user message was committed (model failure, budget, maxSteps,
 * cancel, interrupt) answers that message with a note in the same commit as its terminal record,
 * and a gap a crash left (no note could be written) is bridged in the prompt. Checked on the
 * thread's stored messages and on what the fake provider receives in the following run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newId } from '../../src/core/ids.ts';
import { textOf, userMessage } from '../../src/run/messages.ts';
import type { FakeChatRequest } from '../support/fake-openai.ts';
import { runRecord } from '../support/run-record.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

type Fixture = Awaited<ReturnType<typeof runFixture>>;

/**
 * Asserts the rules providers enforce on a chat: no two user turns in a row, every tool call of
 * an assistant turn answered by a tool message right after it, and no tool message that answers
 * nothing.
 */
function assertValidConversation(req: FakeChatRequest): void {
  const roles = req.messages.map((m) => m.role).join(' ');
  let open = new Set<string>();
  req.messages.forEach((m, i) => {
    const previous = req.messages[i - 1];
    if (m.role === 'tool') {
      assert.ok(
        m.tool_call_id !== undefined && open.delete(m.tool_call_id),
        `a tool message answers a call: ${roles}`,
      );
      return;
    }
    assert.equal(open.size, 0, `every tool call is answered before the next turn: ${roles}`);
    if (m.role === 'user') assert.notEqual(previous?.role, 'user', `two user turns in a row: ${roles}`);
    const calls = (m.tool_calls ?? []) as { id: string }[];
    open = new Set(calls.map((c) => c.id));
  });
  assert.equal(open.size, 0, `a tool call is left without its result: ${roles}`);
}

/** The thread's messages as `role:text` (tool calls and results by name). */
async function stored(f: Fixture, threadId: string): Promise<string[]> {
  const page = await f.pool.threads.messages(P, threadId, { limit: 1000 });
  return page.data.map((m) => {
    const parts = Array.isArray(m.content) ? (m.content as { type: string; toolName?: string }[]) : [];
    const calls = parts.filter((p) => p.type === 'tool-call' || p.type === 'tool-result');
    return calls.length > 0
      ? `${m.role}:${calls.map((p) => p.toolName).join(',')}`
      : `${m.role}:${textOf(m.content)}`;
  });
}

/** What the last request sent, as `role:text`. */
function lastSent(f: Fixture): string[] {
  const req = f.fake.requests.at(-1) ?? assert.fail('no request');
  assertValidConversation(req);
  return req.messages.map((m) => (m.role === 'tool' ? 'tool' : `${m.role}:${String(m.content ?? '')}`));
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

describe('a thread after runs that ended without an answer', () => {
  let f: Fixture;
  before(async () => {
    f = await runFixture({ resilience: { retry: { maxAttempts: 1 } } });
    await f.pool.agents.create(P, { name: 'plain', model: MODEL, instructions: 'Be brief.' });
    await f.pool.agents.create(P, { name: 'once', model: MODEL, tools: ['custom:add'], maxSteps: 1 });
  });
  after(() => f.close());

  it('a failed model call answers the user turn with a note naming the error, committed with the failure', async () => {
    const thread = await f.pool.threads.create(P);
    f.fake.script({ status: 500 });
    const failed = await (
      await f.pool.runs.start(P, 'plain', { input: 'first', threadId: thread.id })
    ).result;
    assert.equal(failed.error?.code, 'MODEL_CALL_FAILED');
    assert.deepEqual(await stored(f, thread.id), [
      'user:first',
      'assistant:[no answer: the run ended with MODEL_CALL_FAILED]',
    ]);
    const note = (await f.pool.threads.messages(P, thread.id)).data[1];
    assert.equal(note?.runId, failed.id, 'the note belongs to the failed run');

    f.fake.script({ text: 'Answered.' });
    const next = await (await f.pool.runs.start(P, 'plain', { input: 'second', threadId: thread.id })).result;
    assert.equal(next.status, 'succeeded');
    assert.deepEqual(lastSent(f), [
      'system:Be brief.',
      'user:first',
      'assistant:[no answer: the run ended with MODEL_CALL_FAILED]',
      'user:second',
    ]);
  });

  it('a run stopped after a tool round keeps the round, answered, and ends it with the note', async () => {
    const thread = await f.pool.threads.create(P);
    f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] });
    const stopped = await (await f.pool.runs.start(P, 'once', { input: 'add', threadId: thread.id })).result;
    assert.equal(stopped.error?.code, 'MAX_STEPS_REACHED');
    assert.deepEqual(await stored(f, thread.id), [
      'user:add',
      'assistant:add',
      'tool:add',
      'assistant:[no answer: the run ended with MAX_STEPS_REACHED]',
    ]);
    f.fake.script({ text: 'It is 3.' });
    await (
      await f.pool.runs.start(P, 'once', { input: 'and?', threadId: thread.id })
    ).result;
    assert.deepEqual(lastSent(f), [
      'user:add',
      'assistant:',
      'tool',
      'assistant:[no answer: the run ended with MAX_STEPS_REACHED]',
      'user:and?',
    ]);
  });

  it('a cancelled run and an interrupted one leave their notes; a run cancelled before it started leaves nothing', async () => {
    const thread = await f.pool.threads.create(P);
    const sent = f.fake.requests.length;
    f.fake.script({ hang: true });
    const first = await f.pool.runs.start(P, 'plain', { input: 'one', threadId: thread.id });
    await until(() => f.fake.requests.length > sent); // its model call is out
    // Waits behind it, and is cancelled before it starts.
    const queued = await f.pool.runs.start(P, 'plain', {
      input: 'never',
      threadId: thread.id,
      multitask: 'enqueue',
    });
    assert.equal((await f.pool.runs.cancel(P, queued.id)).status, 'cancelled');
    assert.equal((await f.pool.runs.cancel(P, first.id)).status, 'cancelled');

    f.fake.script({ hang: true }, { text: 'Three it is.' });
    const second = await f.pool.runs.start(P, 'plain', { input: 'two', threadId: thread.id });
    await until(() => f.fake.requests.length > sent + 1);
    const third = await f.pool.runs.start(P, 'plain', {
      input: 'three',
      threadId: thread.id,
      multitask: 'interrupt',
    });
    assert.equal((await second.result).status, 'interrupted');
    assert.equal((await third.result).status, 'succeeded');
    assert.deepEqual(await stored(f, thread.id), [
      'user:one',
      'assistant:[no answer: the run ended with RUN_CANCELLED]',
      'user:two',
      'assistant:[no answer: the run ended with RUN_INTERRUPTED]',
      'user:three',
      'assistant:Three it is.',
    ]);
    assert.deepEqual(lastSent(f).slice(-2), [
      'assistant:[no answer: the run ended with RUN_INTERRUPTED]',
      'user:three',
    ]);
  });

  it('a user turn a crash left unanswered is followed by a note in the prompt, not in the thread', async () => {
    // What a process killed mid-run leaves: the run and its input committed, then nothing. The
    // thread is made in the store, as by that process: this one has never seen it.
    const now = Date.now();
    const thread = await f.pool.stores.runs.createThread({
      id: newId('thr', now),
      project: P,
      metadata: {},
      ttlSeconds: null,
      now,
    });
    const crashed = runRecord({
      id: newId('run', now),
      project: P,
      threadId: thread.id,
      status: 'running',
      input: 'lost',
    });
    await f.pool.stores.runs.createRun(crashed, [userMessage(newId('msg', now), 'lost', crashed.id, now)]);
    await f.pool.stores.runs.interruptUnfinished(now); // the restart
    f.fake.script({ text: 'Here now.' });
    const run = await (await f.pool.runs.start(P, 'plain', { input: 'hello?', threadId: thread.id })).result;
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(lastSent(f), [
      'system:Be brief.',
      'user:lost',
      'assistant:[no answer: the run stopped before it answered]',
      'user:hello?',
    ]);
    assert.deepEqual(await stored(f, thread.id), ['user:lost', 'user:hello?', 'assistant:Here now.']);
  });
});
