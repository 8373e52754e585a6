/**
 * A stream resumes on any node: a streaming run started on node A, whose client reads a few events
 * and then follows `GET /v1/runs/{id}/events` on node B with `Last-Event-ID`, gets every following
 * event once, in order, up to the terminal one; the same as A sent on its own stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clusterForSuite, isTerminalEvent, readSse, type SseEvent } from '../support/cluster.ts';

const MODEL = 'openai-compatible/fake-model';

describe('streams across three nodes', () => {
  // Each streamed chunk of the model's reply waits 150 ms, so the run lasts about a second.
  const suite = clusterForSuite({ label: 'streams', fake: { chunkDelayMs: 150 } });

  it('a stream started on A resumes on B after Last-Event-ID with no gap and no repeat', async () => {
    const c = suite.cluster;
    await c.putAgent({ name: 'teller', model: MODEL, instructions: 'Tell a story.' });
    c.fake.script({ text: 'Once upon a time there were three nodes and one stream of events.' });
    const response = await c.call(0, 'POST', '/v1/agents/teller/runs', { input: 'a story', stream: true });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);

    // The client reads three events from A; A's stream is kept to the end to compare.
    let firstThree!: SseEvent[];
    const gotThree = Promise.withResolvers<void>();
    const onA = readSse(response, (_e, all) => {
      if (all.length === 3) {
        firstThree = [...all];
        gotThree.resolve();
      }
      return false;
    });
    await Promise.race([gotThree.promise, onA.then(() => assert.fail('A ended before three events'))]);
    const last = firstThree.at(-1)?.id ?? assert.fail('no id');
    const runId =
      (firstThree[0]?.data as { runId?: string; run?: { id: string } }).runId ??
      (firstThree[0]?.data as { run?: { id: string } }).run?.id ??
      assert.fail(`no run id in ${JSON.stringify(firstThree[0])}`);
    assert.ok(!firstThree.some(isTerminalEvent), 'the run is still going');

    const resumed = await c.call(1, 'GET', `/v1/runs/${runId}/events`, undefined, {
      'last-event-id': String(last),
    });
    assert.equal(resumed.status, 200);
    const onB = await readSse(resumed, isTerminalEvent);
    const allOnA = await onA;

    assert.ok(onB.length > 0, 'B sent the following events');
    assert.deepEqual(
      onB.map((e) => e.id),
      onB.map((_, k) => last + 1 + k),
      'B starts right after Last-Event-ID and skips nothing',
    );
    assert.ok(isTerminalEvent(onB.at(-1)!), `B ends with the terminal event, got ${onB.at(-1)?.event}`);
    assert.equal(onB.at(-1)?.event, 'run.finished');
    assert.deepEqual(
      onB.map((e) => [e.id, e.event]),
      allOnA.slice(3).map((e) => [e.id, e.event]),
      'B sent what A sent after the first three',
    );
    assert.deepEqual(
      onB.map((e) => e.data),
      allOnA.slice(3).map((e) => e.data),
    );
    console.log(`A: ${allOnA.map((e) => `${e.id}:${e.event}`).join(' ')}; resumed on B after ${last}`);
  });
});
