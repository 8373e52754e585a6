import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { createAgentPool } from '../../src/agent-pool.ts';
import { eventBytes, type RunEvent, RunEventStream } from '../../src/run/stream.ts';
import { runRecord } from '../support/run-record.ts';

const run = runRecord({ id: 'run_1', status: 'succeeded' });

async function collect(it: AsyncIterable<RunEvent>): Promise<RunEvent[]> {
  const out: RunEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

describe('run event stream', () => {
  it('numbers events 1, 2, 3 … and ends consumers at the terminal event', async () => {
    const stream = new RunEventStream('run_1', () => 42);
    const consumer = collect(stream.events());
    stream.publish({ type: 'text.delta', step: 1, delta: 'he' });
    stream.publish({ type: 'text.delta', step: 1, delta: 'llo' });
    stream.publish({ type: 'run.finished', run });
    assert.equal(
      stream.publish({ type: 'text.delta', step: 1, delta: 'late' }),
      undefined,
      'nothing after the end',
    );
    const events = await consumer;
    assert.deepEqual(
      events.map((e) => [e.seq, e.type]),
      [
        [1, 'text.delta'],
        [2, 'text.delta'],
        [3, 'run.finished'],
      ],
    );
    assert.ok(events.every((e) => e.runId === 'run_1' && e.at === 42));
  });

  it('replays to a late consumer, and resumes after a sequence number', async () => {
    const stream = new RunEventStream('run_1', () => 0);
    for (const d of ['a', 'b', 'c']) stream.publish({ type: 'text.delta', step: 1, delta: d });
    const resumed = collect(stream.events(2));
    const full = collect(stream.events());
    stream.publish({ type: 'run.finished', run });
    assert.deepEqual(
      (await resumed).map((e) => e.seq),
      [3, 4],
    );
    assert.deepEqual(
      (await full).map((e) => e.seq),
      [1, 2, 3, 4],
    );
  });

  it('keeps a bounded replay buffer; a consumer too far behind starts at the oldest kept event', async () => {
    const stream = new RunEventStream('run_1', () => 0, 3);
    for (let i = 0; i < 10; i++) stream.publish({ type: 'text.delta', step: 1, delta: String(i) });
    stream.publish({ type: 'run.finished', run });
    assert.deepEqual(
      (await collect(stream.events(0))).map((e) => e.seq),
      [9, 10, 11],
    );
  });

  it('stops a consumer when its signal aborts', async () => {
    const stream = new RunEventStream('run_1', () => 0);
    const controller = new AbortController();
    const consumer = collect(stream.events(0, controller.signal));
    stream.publish({ type: 'text.delta', step: 1, delta: 'x' });
    await new Promise((r) => setImmediate(r));
    controller.abort();
    assert.equal((await consumer).length, 1);
  });

  it('holds one abort listener per consumer however long it follows, and none after', async () => {
    const stream = new RunEventStream('run_1', () => 0);
    const controller = new AbortController();
    const counts: number[] = [];
    const consumer = (async () => {
      for await (const _ of stream.events(0, controller.signal))
        counts.push(getEventListeners(controller.signal, 'abort').length);
    })();
    for (let i = 0; i < 50; i++) {
      stream.publish({ type: 'text.delta', step: 1, delta: String(i) });
      await new Promise((r) => setImmediate(r));
    }
    stream.publish({ type: 'run.finished', run });
    await consumer;
    assert.equal(counts.length, 51);
    assert.ok(counts.every((c) => c === 1));
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
  });

  it('bounds the replay buffer by bytes too: the oldest events go, a late consumer starts at the oldest kept', async () => {
    const stream = new RunEventStream('run_1', () => 0, 10_000, 2_000);
    for (let i = 0; i < 20; i++) stream.publish({ type: 'text.delta', step: 1, delta: 'x'.repeat(200) });
    stream.publish({ type: 'run.finished', run });
    assert.ok(stream.bytes <= 2_000, `${stream.bytes} bytes kept`);
    const replayed = await collect(stream.events(0));
    assert.ok(replayed.length < 10, `${replayed.length} events kept`);
    assert.equal(replayed.at(-1)?.type, 'run.finished', 'the terminal event stays');
    assert.equal(replayed.at(-1)?.seq, 21);
    const first = replayed[0]?.seq ?? 0;
    assert.ok(first > 1, 'the gap shows in the seq');
    assert.deepEqual(
      replayed.map((e) => e.seq),
      Array.from({ length: 22 - first }, (_, i) => first + i),
      'what is kept is contiguous',
    );
    assert.deepEqual(
      (await collect(stream.events(3))).map((e) => e.seq),
      replayed.map((e) => e.seq),
      'resuming inside the dropped part gets what is kept, as with the count bound',
    );
  });

  it('keeps the newest event even when it alone is larger than the byte budget', async () => {
    const stream = new RunEventStream('run_1', () => 0, 10_000, 1_000);
    stream.publish({ type: 'text.delta', step: 1, delta: 'a' });
    const huge = runRecord({ id: 'run_1', status: 'succeeded', output: 'y'.repeat(50_000) });
    stream.publish({ type: 'run.finished', run: huge });
    const replayed = await collect(stream.events(0));
    assert.deepEqual(
      replayed.map((e) => e.type),
      ['run.finished'],
    );
  });

  it('estimates an event by its texts and payloads, about its size as JSON', () => {
    const delta: RunEvent = { type: 'text.delta', step: 1, delta: 'hello', seq: 1, runId: 'run_1', at: 0 };
    const json = JSON.stringify(delta).length;
    assert.ok(Math.abs(eventBytes(delta) - json) < 100, `${eventBytes(delta)} for ${json}`);
    const finished: RunEvent = {
      type: 'run.finished',
      run: runRecord({ input: 'q'.repeat(10_000), output: 'a'.repeat(20_000) }),
      seq: 2,
      runId: 'run_1',
      at: 0,
    };
    const size = JSON.stringify(finished).length;
    assert.ok(Math.abs(eventBytes(finished) - size) < 500, `${eventBytes(finished)} for ${size}`);
  });
});

describe('replay of finished runs', () => {
  it('keeps finished runs replayable within recentStreamsBytes; older ones replay their terminal event only', async () => {
    const pool = await createAgentPool({
      store: 'memory',
      ttlSweepIntervalMs: 0,
      runs: { recentStreams: 1000, recentStreamsBytes: 60_000 },
    });
    try {
      await pool.agents.create('default', { name: 'echo' });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const handle = await pool.runs.start('default', 'echo', { input: `${i} ${'z'.repeat(10_000)}` });
        ids.push((await handle.result).id);
      }
      const replay = async (id: string) => collect(await pool.runs.events('default', id, 0));
      const newest = await replay(ids[3] as string);
      assert.equal(newest[0]?.type, 'run.started', 'the newest run replays in full');
      assert.ok(newest.length > 2);
      const oldest = await replay(ids[0] as string);
      assert.deepEqual(
        oldest.map((e) => [e.seq, e.type]),
        [[1, 'run.finished']],
        'rebuilt from the record',
      );
    } finally {
      await pool.close();
    }
  });

  it('rejects bad replay options naming the field', async () => {
    await assert.rejects(
      createAgentPool({ store: 'memory', runs: { replayBytes: 0 } }),
      (e: Error & { details?: Record<string, unknown> }) => e.details?.['field'] === 'runs.replayBytes',
    );
  });
});
