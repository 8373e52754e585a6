import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { json, parseSse, serverFixture } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
interface RunBody {
  id: string;
  status: string;
  output: string | null;
  threadId: string | null;
  steps: number;
  error: { code: string } | null;
  metadata: Record<string, unknown>;
}
interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

describe('thread and run routes', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await serverFixture();
    await f.pool.agents.create('default', { name: 'calc', tools: ['builtin:calculator'] });
    await f.pool.agents.create('default', { name: 'slow', model: 'slow/model' });
  });
  afterEach(() => f.close());

  const startRun = (agent: string, payload: Record<string, unknown>) =>
    f.app.inject({ method: 'POST', url: `/v1/agents/${agent}/runs`, payload });
  const newThread = async () =>
    json<{ id: string }>(await f.app.inject({ method: 'POST', url: '/v1/threads' })).id;

  it('POST /v1/threads creates a thread (201), with or without a body; GET reads it; 404 THREAD_NOT_FOUND', async () => {
    const empty = await f.app.inject({ method: 'POST', url: '/v1/threads' });
    assert.equal(empty.statusCode, 201);
    const withBody = await f.app.inject({
      method: 'POST',
      url: '/v1/threads',
      payload: { metadata: { ticket: 'T-1' }, ttlSeconds: 3600 },
    });
    assert.equal(withBody.statusCode, 201);
    const thread = json<{ id: string; metadata: object; ttlSeconds: number; project: string }>(withBody);
    assert.deepEqual(thread.metadata, { ticket: 'T-1' });
    assert.equal(thread.ttlSeconds, 3600);
    assert.equal(thread.project, 'default');
    const got = await f.app.inject({ url: `/v1/threads/${thread.id}` });
    assert.equal(got.statusCode, 200);
    assert.equal(json<{ id: string }>(got).id, thread.id);
    const missing = await f.app.inject({ url: '/v1/threads/thr_nope' });
    assert.equal(missing.statusCode, 404);
    assert.equal(json<ErrorBody>(missing).error.code, 'THREAD_NOT_FOUND');
    const bad = await f.app.inject({ method: 'POST', url: '/v1/threads', payload: { ttlSeconds: 0 } });
    assert.equal(bad.statusCode, 400);
    assert.equal(json<ErrorBody>(bad).error.details['field'], 'ttlSeconds');
  });

  it('a wait-mode run answers 200 with the terminal run, after a tool call', async () => {
    const threadId = await newThread();
    const res = await startRun('calc', { input: 'what is 17*23', threadId, metadata: { ticket: 'T-1' } });
    assert.equal(res.statusCode, 200);
    const run = json<RunBody>(res);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.output, '[demo] 17*23 = 391');
    assert.equal(run.steps, 2);
    assert.equal(run.threadId, threadId);
    assert.deepEqual(run.metadata, { ticket: 'T-1' });
    const got = json<RunBody>(await f.app.inject({ url: `/v1/runs/${run.id}` }));
    assert.deepEqual(got, run);
  });

  it('a run with `thread` starts a new thread in the same request: 200, its threadId readable, its messages kept', async () => {
    const res = await startRun('calc', { input: 'what is 2*21', thread: { metadata: { ticket: 'T-9' } } });
    assert.equal(res.statusCode, 200);
    const run = json<RunBody>(res);
    assert.equal(run.status, 'succeeded');
    const thread = json<{ id: string; metadata: object; messageCount: number }>(
      await f.app.inject({ url: `/v1/threads/${run.threadId}` }),
    );
    assert.deepEqual(thread.metadata, { ticket: 'T-9' });
    assert.ok(thread.messageCount >= 2, 'the input and the answer are on it');
    const both = await startRun('calc', { input: 'x', thread: {}, threadId: thread.id });
    assert.equal(both.statusCode, 400);
    assert.equal(json<ErrorBody>(both).error.details['field'], 'thread');
    const bad = await startRun('calc', { input: 'x', thread: { ttlSeconds: 0 } });
    assert.equal(bad.statusCode, 400);
  });

  it('GET /v1/threads/{id}/messages and /runs page through what runs committed', async () => {
    const threadId = await newThread();
    const run = json<RunBody>(await startRun('calc', { input: 'what is 17*23', threadId }));
    const messages = await f.app.inject({ url: `/v1/threads/${threadId}/messages?limit=2` });
    assert.equal(messages.statusCode, 200);
    const page = json<{ data: { seq: number; role: string }[]; nextCursor: string }>(messages);
    assert.deepEqual(
      page.data.map((m) => [m.seq, m.role]),
      [
        [1, 'user'],
        [2, 'assistant'],
      ],
    );
    const rest = json<{ data: { role: string }[]; nextCursor: string | null }>(
      await f.app.inject({
        url: `/v1/threads/${threadId}/messages?cursor=${encodeURIComponent(page.nextCursor)}`,
      }),
    );
    assert.deepEqual(
      rest.data.map((m) => m.role),
      ['tool', 'assistant'],
    );
    const runs = json<{ data: RunBody[] }>(await f.app.inject({ url: `/v1/threads/${threadId}/runs` }));
    assert.deepEqual(
      runs.data.map((r) => r.id),
      [run.id],
    );
    const tooBig = await f.app.inject({ url: `/v1/threads/${threadId}/messages?limit=1001` });
    assert.equal(tooBig.statusCode, 400);
    assert.equal(json<ErrorBody>(tooBig).error.details['field'], 'limit');
    assert.equal((await f.app.inject({ url: '/v1/threads/thr_nope/messages' })).statusCode, 404);
    assert.equal((await f.app.inject({ url: '/v1/threads/thr_nope/runs' })).statusCode, 404);
  });

  it('a background run answers 202 with the accepted run; its events follow it to the end', async () => {
    const res = await startRun('calc', { input: 'what is 17*23', background: true });
    assert.equal(res.statusCode, 202);
    const accepted = json<RunBody>(res);
    assert.ok(['queued', 'running'].includes(accepted.status));
    assert.equal(res.headers['location'], `/v1/runs/${accepted.id}`);
    const events = await f.app.inject({ url: `/v1/runs/${accepted.id}/events` });
    assert.equal(events.statusCode, 200);
    assert.match(String(events.headers['content-type']), /^text\/event-stream/);
    const parsed = parseSse(events.body);
    assert.equal(parsed.at(-1)?.event, 'run.finished');
    const done = json<RunBody>(await f.app.inject({ url: `/v1/runs/${accepted.id}` }));
    assert.equal(done.status, 'succeeded');
    assert.equal(done.output, '[demo] 17*23 = 391');
  });

  it('stream: true answers server-sent events numbered by seq, ending with run.finished', async () => {
    const res = await startRun('calc', { input: 'what is 17*23', stream: true });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    assert.match(res.body, /^id: 1\nevent: run\.started\ndata: \{/);
    const events = parseSse(res.body);
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_e, i) => i + 1),
    );
    for (const e of events) {
      assert.equal(e.event, e.data.type);
      assert.equal(e.id, e.data.seq);
    }
    const types = events.map((e) => e.event);
    assert.equal(types[0], 'run.started');
    assert.ok(types.includes('tool.call'));
    assert.ok(types.includes('tool.result'));
    assert.equal(types.at(-1), 'run.finished');
    const text = events
      .filter((e) => e.event === 'text.delta')
      .map((e) => e.data['delta'])
      .join('');
    assert.equal(text, '[demo] 17*23 = 391');
  });

  it('a second run on a busy thread with multitask reject answers 409 THREAD_BUSY; DELETE of a busy thread too', async () => {
    const threadId = await newThread();
    const first = await startRun('slow', { input: 'hello', threadId, background: true });
    assert.equal(first.statusCode, 202);
    await f.slow.started;
    const second = await startRun('slow', { input: 'again', threadId, multitask: 'reject' });
    assert.equal(second.statusCode, 409);
    const body = json<ErrorBody>(second);
    assert.equal(body.error.code, 'THREAD_BUSY');
    assert.equal(body.error.details['activeRunId'], json<RunBody>(first).id);
    const del = await f.app.inject({ method: 'DELETE', url: `/v1/threads/${threadId}` });
    assert.equal(del.statusCode, 409);
    assert.equal(json<ErrorBody>(del).error.code, 'THREAD_BUSY');
    f.slow.release();
    await f.app.inject({ url: `/v1/runs/${json<RunBody>(first).id}/events` }); // until it ends
    const deleted = await f.app.inject({ method: 'DELETE', url: `/v1/threads/${threadId}` });
    assert.equal(deleted.statusCode, 204);
    assert.equal((await f.app.inject({ url: `/v1/threads/${threadId}` })).statusCode, 404);
  });

  it('POST /v1/runs/{id}/cancel answers the cancelled run; again, 409 RUN_NOT_ACTIVE', async () => {
    const accepted = json<RunBody>(await startRun('slow', { input: 'hello', background: true }));
    await f.slow.started;
    const res = await f.app.inject({ method: 'POST', url: `/v1/runs/${accepted.id}/cancel` });
    assert.equal(res.statusCode, 200);
    const run = json<RunBody>(res);
    assert.equal(run.status, 'cancelled');
    assert.equal(run.error?.code, 'RUN_CANCELLED');
    const again = await f.app.inject({ method: 'POST', url: `/v1/runs/${accepted.id}/cancel` });
    assert.equal(again.statusCode, 409);
    assert.equal(json<ErrorBody>(again).error.code, 'RUN_NOT_ACTIVE');
  });

  it('unknown runs and agents answer 404 with their codes', async () => {
    for (const [url, method, code] of [
      ['/v1/runs/run_nope', 'GET', 'RUN_NOT_FOUND'],
      ['/v1/runs/run_nope/events', 'GET', 'RUN_NOT_FOUND'],
      ['/v1/runs/run_nope/cancel', 'POST', 'RUN_NOT_FOUND'],
    ] as const) {
      const res = await f.app.inject({ method, url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(json<ErrorBody>(res).error.code, code, url);
    }
    const noAgent = await startRun('nobody', { input: 'hi' });
    assert.equal(noAgent.statusCode, 404);
    assert.equal(json<ErrorBody>(noAgent).error.code, 'AGENT_NOT_FOUND');
    const noThread = await startRun('calc', { input: 'hi', threadId: 'thr_nope' });
    assert.equal(noThread.statusCode, 404);
    assert.equal(json<ErrorBody>(noThread).error.code, 'THREAD_NOT_FOUND');
  });

  it('rejects bad run requests with 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'input'],
      [{ input: 5 }, 'input'],
      [{ input: '' }, 'input'], // the facade's own length check
      [{ input: 'x'.repeat(100_001) }, 'input'],
      [{ input: 'hi', multitask: 'later' }, 'multitask'],
      [{ input: 'hi', stream: 'yes' }, 'stream'],
      [{ input: 'hi', tools: [] }, 'tools'],
      [{ input: 'hi', stream: true, background: true }, 'background'],
    ];
    for (const [payload, field] of cases) {
      const res = await startRun('calc', payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80));
      const body = json<ErrorBody>(res);
      assert.equal(body.error.code, 'VALIDATION_FAILED');
      assert.equal(body.error.details['field'], field, JSON.stringify(payload).slice(0, 80));
    }
  });
});
