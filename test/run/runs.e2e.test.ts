import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { textOf } from '../../src/run/messages.ts';
import type { RunEvent } from '../../src/run/stream.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

type Fixture = Awaited<ReturnType<typeof runFixture>>;

async function collect(events: AsyncIterable<RunEvent>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('runs end to end, against an OpenAI-compatible server over HTTP', () => {
  let f: Fixture;
  before(async () => {
    // Retries stay on (3 attempts), with short backoffs so failing cases stay fast.
    f = await runFixture({ resilience: { retry: { initialDelayMs: 1, maxDelayMs: 2 } } });
    const agents = f.pool.agents;
    await agents.create(P, { name: 'plain', model: MODEL, instructions: 'Be brief.' });
    await agents.create(P, {
      name: 'tooled',
      model: MODEL,
      tools: ['custom:add', 'custom:boom', 'custom:slow'],
    });
    await agents.create(P, { name: 'loopy', model: MODEL, tools: ['custom:add'], maxSteps: 2 });
  });
  after(() => f.close());

  it('answers plainly and commits the user and assistant messages with the run', async () => {
    f.fake.script({ text: 'Hello there.' });
    const thread = await f.pool.threads.create(P);
    const handle = await f.pool.runs.start(P, 'plain', { input: 'Hi!', threadId: thread.id });
    assert.equal(handle.accepted.status, 'queued');
    const run = await handle.result;
    assert.equal(run.status, 'succeeded');
    assert.equal(run.output, 'Hello there.');
    assert.equal(run.steps, 1);
    assert.ok(run.inputTokens > 0 && run.outputTokens > 0);
    const messages = (await f.pool.threads.messages(P, thread.id)).data;
    assert.deepEqual(
      messages.map((m) => [m.seq, m.role, textOf(m.content)]),
      [
        [1, 'user', 'Hi!'],
        [2, 'assistant', 'Hello there.'],
      ],
    );
    const sent = f.fake.requests.at(-1);
    assert.equal(sent?.messages[0]?.role, 'system');
    assert.equal(sent?.messages[0]?.content, 'Be brief.');
    assert.deepEqual(await f.pool.runs.get(P, run.id), run);
  });

  it('calls a tool, feeds its result back, and answers', async () => {
    const before = f.calls.add;
    f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 17, b: 25 } }] }, { text: 'It is 42.' });
    const thread = await f.pool.threads.create(P);
    const run = await (
      await f.pool.runs.start(P, 'tooled', { input: 'add 17 and 25', threadId: thread.id })
    ).result;
    assert.equal(run.status, 'succeeded');
    assert.equal(run.steps, 2);
    assert.equal(f.calls.add, before + 1);
    const roles = (await f.pool.threads.messages(P, thread.id)).data.map((m) => m.role);
    assert.deepEqual(roles, ['user', 'assistant', 'tool', 'assistant']);
    const second = f.fake.requests.at(-1);
    const toolMessage = second?.messages.find((m) => m.role === 'tool');
    assert.match(String(toolMessage?.content), /"sum":42/);
    assert.deepEqual(
      (second?.tools ?? []).map((t) => t.function.name),
      ['add', 'boom', 'slow'],
    );
  });

  it('runs several tool calls of one step in parallel', async () => {
    f.fake.script(
      {
        toolCalls: [
          { name: 'add', arguments: { a: 1, b: 2 } },
          { name: 'add', arguments: { a: 3, b: 4 } },
        ],
      },
      { text: 'done' },
    );
    const handle = await f.pool.runs.start(P, 'tooled', { input: 'two sums' });
    const events = await collect(handle.stream.events());
    const results = events.filter((e) => e.type === 'tool.result');
    assert.deepEqual(
      results.map((e) => e.type === 'tool.result' && e.output),
      [{ sum: 3 }, { sum: 7 }],
    );
    assert.equal((await handle.result).status, 'succeeded');
  });

  it('streams numbered events: started, deltas, tool call and result, steps, finished', async () => {
    f.fake.script(
      { toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] },
      { text: 'The answer is two.' },
    );
    const handle = await f.pool.runs.start(P, 'tooled', { input: '1+1' });
    const events = await collect(handle.stream.events());
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    );
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'run.started');
    assert.equal(types.at(-1), 'run.finished');
    assert.ok(types.indexOf('tool.call') < types.indexOf('tool.result'));
    assert.equal(types.filter((t) => t === 'step.finished').length, 2);
    const text = events.map((e) => (e.type === 'text.delta' ? e.delta : '')).join('');
    assert.equal(text, 'The answer is two.');
    assert.ok(types.filter((t) => t === 'text.delta').length > 1, 'text arrives in several deltas');
    // a consumer resuming after seq 3 gets exactly the rest
    const resumed = await collect(await f.pool.runs.events(P, handle.id, 3));
    assert.deepEqual(
      resumed.map((e) => e.seq),
      events.slice(3).map((e) => e.seq),
    );
  });

  it('turns a throwing tool into a tool-error result the model sees', async () => {
    f.fake.script({ toolCalls: [{ name: 'boom', arguments: {} }] }, { text: 'Sorry, that failed.' });
    const handle = await f.pool.runs.start(P, 'tooled', { input: 'explode' });
    const events = await collect(handle.stream.events());
    const result = events.find((e) => e.type === 'tool.result');
    assert.ok(result?.type === 'tool.result' && !result.ok && result.error?.code === 'TOOL_FAILED');
    assert.equal((await handle.result).status, 'succeeded');
    const toolMessage = f.fake.requests.at(-1)?.messages.find((m) => m.role === 'tool');
    assert.match(String(toolMessage?.content), /TOOL_FAILED: .*warehouse is on fire/);
  });

  it('fails with MODEL_CALL_FAILED when the model keeps returning 500, after its retries, and commits that', async () => {
    const failure = { status: 500, body: { error: { message: 'upstream exploded' } } };
    f.fake.script(failure, failure, failure);
    const sent = f.fake.requests.length;
    const handle = await f.pool.runs.start(P, 'plain', { input: 'hello' });
    const run = await handle.result;
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'MODEL_CALL_FAILED');
    assert.match(run.error?.message ?? '', /500/);
    assert.equal(f.fake.requests.length - sent, 3, 'three attempts');
    assert.deepEqual(await f.pool.runs.get(P, run.id), run);
  });

  it('retries a 500 once and succeeds, and does not retry a 400', async () => {
    f.fake.script({ status: 500 }, { text: 'second time lucky' });
    const ok = await (await f.pool.runs.start(P, 'plain', { input: 'flaky' })).result;
    assert.equal(ok.status, 'succeeded');
    assert.equal(ok.output, 'second time lucky');
    const sent = f.fake.requests.length;
    f.fake.script({ status: 400, body: { error: { message: 'bad request' } } });
    const bad = await (await f.pool.runs.start(P, 'plain', { input: 'malformed' })).result;
    assert.equal(bad.error?.code, 'MODEL_CALL_FAILED');
    assert.equal(f.fake.requests.length - sent, 1, 'a 400 is not retried');
  });

  it('cancels mid-run: the model request is aborted and the run ends cancelled', async () => {
    f.fake.script({ hang: true });
    const abortedBefore = f.fake.aborted;
    const sent = f.fake.requests.length;
    const handle = await f.pool.runs.start(P, 'plain', { input: 'wait forever' });
    while (f.fake.requests.length === sent) await new Promise((r) => setTimeout(r, 5)); // the model call is out
    const run = await f.pool.runs.cancel(P, handle.id);
    assert.equal(run.status, 'cancelled');
    assert.equal(run.error?.code, 'RUN_CANCELLED');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(f.fake.aborted, abortedBefore + 1, 'the HTTP request was aborted');
    await assert.rejects(f.pool.runs.cancel(P, handle.id), (e) => isAgentPoolError(e, 'RUN_NOT_ACTIVE'));
  });

  it('cancels a running tool too', async () => {
    f.fake.script({ toolCalls: [{ name: 'slow', arguments: {} }] });
    const handle = await f.pool.runs.start(P, 'tooled', { input: 'be slow' });
    for await (const e of handle.stream.events()) if (e.type === 'tool.call') break;
    const run = await f.pool.runs.cancel(P, handle.id);
    assert.equal(run.status, 'cancelled');
  });

  it('stops at maxSteps with MAX_STEPS_REACHED', async () => {
    const call = { toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] };
    f.fake.script(call, call);
    const run = await (await f.pool.runs.start(P, 'loopy', { input: 'loop' })).result;
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'MAX_STEPS_REACHED');
    assert.equal(run.steps, 2);
  });

  it('rejects bad input and unknown agents or threads before recording anything', async () => {
    await assert.rejects(f.pool.runs.start(P, 'plain', { input: '' }), (e) =>
      isAgentPoolError(e, 'VALIDATION_FAILED'),
    );
    await assert.rejects(f.pool.runs.start(P, 'ghost', { input: 'x' }), (e) =>
      isAgentPoolError(e, 'AGENT_NOT_FOUND'),
    );
    await assert.rejects(f.pool.runs.start(P, 'plain', { input: 'x', threadId: 'thr_missing' }), (e) =>
      isAgentPoolError(e, 'THREAD_NOT_FOUND'),
    );
    const theirs = await f.pool.threads.create('other');
    await assert.rejects(f.pool.runs.start(P, 'plain', { input: 'x', threadId: theirs.id }), (e) =>
      isAgentPoolError(e, 'THREAD_NOT_FOUND'),
    );
  });

  it('keeps the conversation: the second run on a thread sends the first exchange to the model', async () => {
    f.fake.script({ text: 'Nice to meet you, Ada.' }, { text: 'Your name is Ada.' });
    const thread = await f.pool.threads.create(P);
    await (
      await f.pool.runs.start(P, 'plain', { input: 'I am Ada.', threadId: thread.id })
    ).result;
    await (
      await f.pool.runs.start(P, 'plain', { input: 'Who am I?', threadId: thread.id })
    ).result;
    const sent = f.fake.requests.at(-1)?.messages.map((m) => `${m.role}:${String(m.content)}`);
    assert.deepEqual(sent, [
      'system:Be brief.',
      'user:I am Ada.',
      'assistant:Nice to meet you, Ada.',
      'user:Who am I?',
    ]);
    const runs = await f.pool.threads.runs(P, thread.id);
    assert.equal(runs.data.length, 2);
  });

  it("cancels when the caller's signal aborts, and leaves no listener on it after a run", async () => {
    const caller = new AbortController();
    f.fake.script({ text: 'fine' });
    await (
      await f.pool.runs.start(P, 'plain', { input: 'one', signal: caller.signal })
    ).result;
    assert.equal(getEventListeners(caller.signal, 'abort').length, 0);
    f.fake.script({ hang: true });
    const sent = f.fake.requests.length;
    const handle = await f.pool.runs.start(P, 'plain', { input: 'two', signal: caller.signal });
    while (f.fake.requests.length === sent) await new Promise((r) => setTimeout(r, 5)); // the model call is out
    caller.abort();
    const run = await handle.result;
    assert.equal(run.status, 'cancelled');
    assert.equal(getEventListeners(caller.signal, 'abort').length, 0);
  });

  it('cancels a run whose caller went away while it was being accepted, before any model call', async () => {
    const caller = new AbortController();
    caller.abort();
    const sent = f.fake.requests.length;
    const run = await (await f.pool.runs.start(P, 'plain', { input: 'gone', signal: caller.signal })).result;
    assert.equal(run.status, 'cancelled');
    assert.equal(run.error?.code, 'RUN_CANCELLED');
    assert.equal(f.fake.requests.length, sent, 'no model call was made');
  });

  it('idle() resolves at once with no run in flight, else when the last one ends', async () => {
    await f.pool.runs.idle();
    f.fake.script({ delayMs: 50, then: { text: 'later' } });
    const handle = await f.pool.runs.start(P, 'plain', { input: 'wait' });
    let idle = false;
    const waiting = f.pool.runs.idle().then(() => (idle = true));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(idle, false, 'a run is still in flight');
    await waiting;
    assert.equal((await handle.result).status, 'succeeded');
    assert.equal(f.pool.runs.activeCount, 0);
  });

  it('runs statelessly without a thread and stores no messages', async () => {
    f.fake.script({ text: 'ok' });
    const run = await (await f.pool.runs.start(P, 'plain', { input: 'no thread' })).result;
    assert.equal(run.status, 'succeeded');
    assert.equal(run.threadId, null);
  });
});
