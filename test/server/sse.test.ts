import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { parseSse, serverFixture, type SseEvent } from './support.ts';

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/** Reads an SSE response until `count` complete events arrived. */
async function readEvents(res: Response, count: number): Promise<SseEvent[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const events = parseSse(text.slice(0, text.lastIndexOf('\n\n') + 2));
      if (events.length >= count) return events;
      const { value, done } = await reader.read();
      if (done) return events;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
}

describe('server-sent events over a real socket', () => {
  let f: Fixture;
  let base: string;
  beforeEach(async () => {
    f = await serverFixture();
    await f.pool.agents.create('default', { name: 'calc', tools: ['builtin:calculator'] });
    await f.pool.agents.create('default', { name: 'slow', model: 'slow/model' });
    base = await f.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterEach(() => f.close());

  const post = (path: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(signal !== undefined && { signal }),
    });

  it('streams a run as it happens and ends the response after run.finished', async () => {
    const res = await post('/v1/agents/calc/runs', { input: 'what is 17*23', stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
    const events = parseSse(await res.text()); // resolves only because the server ends the response
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_e, i) => i + 1),
    );
    assert.equal(events[0]?.event, 'run.started');
    assert.equal(events.at(-1)?.event, 'run.finished');
    const run = events.at(-1)?.data['run'] as { output: string; status: string };
    assert.equal(run.status, 'succeeded');
    assert.equal(run.output, '[demo] 17*23 = 391');
  });

  it('resumes GET /v1/runs/{id}/events after Last-Event-ID (or ?after=); a follower leaving cancels nothing', async () => {
    const accepted = (await (
      await post('/v1/agents/slow/runs', { input: 'hello', background: true })
    ).json()) as {
      id: string;
    };
    const follower = new AbortController();
    const live = await fetch(`${base}/v1/runs/${accepted.id}/events`, { signal: follower.signal });
    assert.equal(live.status, 200);
    const firstSeen = await readEvents(live, 1);
    assert.deepEqual(
      firstSeen.map((e) => [e.id, e.event]),
      [[1, 'run.started']],
    );
    follower.abort(); // the client goes away mid-run
    await f.slow.started;
    f.slow.release();

    const resumed = await fetch(`${base}/v1/runs/${accepted.id}/events`, {
      headers: { 'last-event-id': '1' },
    });
    const rest = parseSse(await resumed.text());
    assert.equal(rest[0]?.id, 2, 'replay starts right after the last event seen');
    assert.equal(rest.at(-1)?.event, 'run.finished', 'the run went on without its follower');
    assert.deepEqual(
      rest.map((e) => e.id),
      rest.map((_e, i) => i + 2),
    );
    const byQuery = parseSse(
      await (await fetch(`${base}/v1/runs/${accepted.id}/events?after=${rest.length}`)).text(),
    );
    assert.deepEqual(
      byQuery.map((e) => e.id),
      [rest.length + 1],
    );
    const run = await f.pool.runs.get('default', accepted.id);
    assert.equal(run.status, 'succeeded');
  });

  it('cancels a streaming run when its client disconnects', async () => {
    const client = new AbortController();
    const res = await post('/v1/agents/slow/runs', { input: 'hello', stream: true }, client.signal);
    const [started] = await readEvents(res, 1);
    assert.equal(started?.event, 'run.started');
    const runId = (started?.data['run'] as { id: string }).id;
    await f.slow.started;
    client.abort();
    const events = await f.pool.runs.events('default', runId);
    let last: string | undefined;
    for await (const e of events) last = e.type;
    assert.equal(last, 'run.failed');
    const run = await f.pool.runs.get('default', runId);
    assert.equal(run.status, 'cancelled');
    assert.equal(run.error?.code, 'RUN_CANCELLED');
  });

  it('cancels a wait-mode run when its client disconnects', async () => {
    const thread = await f.pool.threads.create('default');
    const client = new AbortController();
    const pending = post('/v1/agents/slow/runs', { input: 'hello', threadId: thread.id }, client.signal);
    await f.slow.started;
    client.abort();
    await assert.rejects(pending);
    await f.pool.runs.idle(); // it ends, and is written as it ended (a wait run is written once)
    const [run, ...others] = (await f.pool.threads.runs('default', thread.id)).data;
    assert.equal(others.length, 0);
    assert.equal(run?.status, 'cancelled');
    assert.equal(run?.error?.code, 'RUN_CANCELLED');
  });
});
