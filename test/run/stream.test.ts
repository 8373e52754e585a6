import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { type RunEvent, RunEventStream } from '../../src/run/stream.ts';
import type { RunRecord } from '../../src/store/ports.ts';

const run = { id: 'run_1', status: 'succeeded' } as RunRecord;

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
});
