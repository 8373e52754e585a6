/**
 * The noisy neighbour, end to end: one project floods a model every project shares, and another
 * project's run still reaches the provider after about one call of the flood, not behind all of
 * it. Order is asserted (arrivals at the fake provider), never time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FakeChatRequest, FakeReply } from '../support/fake-openai.ts';
import { MODEL, runFixture } from '../support/run-fixture.ts';

describe('a model shared by projects, flooded by one of them', () => {
  it("serves a quiet project's run after one round of the flooding project's 200, not after all of them", async () => {
    const f = await runFixture({
      ttlSweepIntervalMs: 0,
      resilience: { bulkhead: { maxConcurrent: 2, maxQueue: 1000 } },
    });
    try {
      // A slow model: each request waits until the test answers it, oldest first.
      const waiting: (() => void)[] = [];
      let slowDown = true;
      const slow = async (req: FakeChatRequest): Promise<FakeReply> => {
        if (slowDown) await new Promise<void>((resolve) => waiting.push(resolve));
        return { text: `answered ${String(req.messages.at(-1)?.content)}` };
      };
      f.fake.script(...Array.from({ length: 201 }, () => slow));
      const arrivals = () => f.fake.requests.map((r) => String(r.messages.at(-1)?.content));
      for (const project of ['noisy', 'quiet']) {
        await f.pool.projects.create({ id: project });
        await f.pool.agents.create(project, { name: 'helper', model: MODEL });
      }

      const flood = await Promise.all(
        Array.from({ length: 200 }, (_, i) => f.pool.runs.start('noisy', 'helper', { input: `noisy ${i}` })),
      );
      while (arrivals().length < 2) await sleep(1); // two in flight, the rest queued for the model
      const stats = () => f.pool.guards.stats().find((s) => s.model === MODEL);
      while ((stats()?.queued ?? 0) < 198) await sleep(1);
      const quiet = await f.pool.runs.start('quiet', 'helper', { input: 'quiet' });
      while (stats()?.queued !== 199) await sleep(1);

      while (!arrivals().includes('quiet')) {
        while (waiting.length === 0) await sleep(1);
        waiting.shift()?.();
      }
      const position = arrivals().indexOf('quiet');
      assert.ok(
        position <= 3,
        `the quiet run reached the provider at position ${position}: ${arrivals().join(', ')}`,
      );

      // Let everything finish, at full speed.
      slowDown = false;
      for (const answer of waiting.splice(0)) answer();
      const done = Promise.all([quiet.result, ...flood.map((h) => h.result)]);
      const runs = await done;
      assert.ok(runs.every((r) => r.status === 'succeeded'));
      assert.equal(runs[0]?.output, 'answered quiet');
    } finally {
      await f.close();
    }
  });
});
