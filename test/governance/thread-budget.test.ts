/**
 * Budgets and thread runs: admission reserves what a run's first model call really sends (the
 * thread's history included), so an admitted run is never starved of its first call by runs
 * admitted after it; a run the budget can never cover is refused as such.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { type AgentPoolError, isAgentPoolError } from '../../src/core/errors.ts';
import type { RunHandle } from '../../src/run/runs.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

/** $1/1024 per token in and out: costs and their sums are exact binary fractions. */
// $1/512 per token: an exact binary fraction on the 1e-9 money grid, so sums compare to the last bit.
const PER_MILLION = 1_000_000 / 512;
const T0 = Date.UTC(2026, 0, 15, 12);

async function fixture() {
  return runFixture({
    clock: new ManualClock(T0),
    ttlSweepIntervalMs: 0,
    prices: { prices: { [MODEL]: { inputPerMillion: PER_MILLION, outputPerMillion: PER_MILLION } } },
  });
}
type Fixture = Awaited<ReturnType<typeof fixture>>;

const BRIEF = { name: 'brief', model: MODEL, instructions: 'Be brief.', maxTokens: 16 };

/** Starts one run per thread at once; splits them into admitted handles and refusals by thread. */
async function startOnThreads(f: Fixture, threads: readonly string[], input: string) {
  const settled = await Promise.allSettled(
    threads.map((threadId) => f.pool.runs.start(P, 'brief', { input, threadId })),
  );
  const admitted: RunHandle[] = [];
  const refused: { threadId: string; error: AgentPoolError }[] = [];
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') admitted.push(s.value);
    else {
      assert.ok(isAgentPoolError(s.reason), String(s.reason));
      refused.push({ threadId: threads[i] as string, error: s.reason });
    }
  });
  return { admitted, refused };
}

/** Roles of a thread's messages, in order. */
async function roles(f: Fixture, threadId: string): Promise<string[]> {
  const page = await f.pool.threads.messages(P, threadId, { limit: 1000 });
  return page.data.map((m) => m.role);
}

describe('budgets and thread runs', () => {
  it('32 concurrent thread runs with a history, on a budget that covers them at real usage: none fails mid-run, refusals are honest, nothing overspends', async () => {
    const f = await fixture();
    try {
      await f.pool.projects.create({ id: P });
      await f.pool.agents.create(P, BRIEF);
      // Each thread gets a history of about 4 KB: two earlier exchanges with long questions.
      f.fake.script(...Array.from({ length: 500 }, () => ({ text: 'Noted.' })));
      const threads: string[] = [];
      for (let i = 0; i < 32; i++) {
        const thread = await f.pool.threads.create(P);
        threads.push(thread.id);
        for (let turn = 0; turn < 2; turn++) {
          const input = `thread ${i} turn ${turn}: ${'context '.repeat(250)}`;
          const run = await (await f.pool.runs.start(P, 'brief', { input, threadId: thread.id })).result;
          assert.equal(run.status, 'succeeded');
        }
      }
      const seeded = await f.pool.stores.runs.costSince(P, 0);
      // $200: every run's real cost (its tokens as the fake counts them, about a quarter of the
      // bytes it sends) fits three times over, but not every run's worst case at once.
      const budget = 200;
      await f.pool.projects.updateLimits(P, { budgets: { dailyUsd: seeded + budget } });

      const results: RunRecord[] = [];
      const refusals: AgentPoolError[] = [];
      let waiting = threads;
      // A client honouring Retry-After: refused runs are sent again once the runs in flight ended.
      for (let wave = 0; waiting.length > 0; wave++) {
        assert.ok(wave < 32, `runs still refused after ${wave} waves`);
        const { admitted, refused } = await startOnThreads(f, waiting, 'And now, in one word?');
        assert.ok(admitted.length > 0, `wave ${wave} admitted a run`);
        results.push(...(await Promise.all(admitted.map((h) => h.result))));
        refusals.push(...refused.map((r) => r.error));
        waiting = refused.map((r) => r.threadId);
      }

      const failed = results.filter((r) => r.status !== 'succeeded');
      assert.deepEqual(
        failed.map((r) => `${r.error?.code}: ${r.error?.message}`),
        [],
        'no admitted run failed',
      );
      assert.equal(results.length, 32, 'every thread got its answer');
      for (const e of refusals) {
        assert.equal(e.code, 'BUDGET_EXHAUSTED');
        assert.equal(e.details['retryAfterSeconds'], 1, 'only reservations of runs in flight blocked it');
      }
      const spent = (await f.pool.stores.runs.costSince(P, 0)) - seeded;
      assert.ok(spent <= budget, `spent $${spent} of $${budget}`);
      const daily = (await f.pool.governance.usage(P)).budgets.daily;
      assert.equal(daily.reservedUsd, 0);
      assert.equal(daily.spentUsd, seeded + spent, 'governance spent what the store says');
      for (const threadId of threads) {
        assert.deepEqual(await roles(f, threadId), [
          'user',
          'assistant',
          'user',
          'assistant',
          'user',
          'assistant',
        ]);
      }
    } finally {
      await f.close();
    }
  });

  it('a thread run the budget stops mid-run leaves the thread a valid conversation for the next run', async () => {
    const f = await fixture();
    try {
      const adder = {
        name: 'adder',
        model: MODEL,
        instructions: 'Use the tool.',
        tools: ['custom:add'],
        maxTokens: 16,
      };
      // What the first call may cost at worst: admission reserves two of them for an agent with tools.
      await f.pool.projects.create({ id: 'probe', limits: { budgets: { dailyUsd: 1_000 } } });
      await f.pool.agents.create('probe', adder);
      let reserved = 0;
      f.fake.script(async () => {
        reserved = (await f.pool.governance.usage('probe')).budgets.daily.reservedUsd;
        return { text: 'No tool needed.' };
      });
      const probeThread = await f.pool.threads.create('probe');
      await (
        await f.pool.runs.start('probe', 'adder', { input: 'add 1 and 2', threadId: probeThread.id })
      ).result;
      const worst1 = reserved / 2;

      // The first call fits the day's budget exactly; the second sends more, so it never can.
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: worst1 } } });
      await f.pool.agents.create(P, adder);
      const thread = await f.pool.threads.create(P);
      f.fake.script({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] });
      const stopped = await (
        await f.pool.runs.start(P, 'adder', { input: 'add 1 and 2', threadId: thread.id })
      ).result;
      assert.equal(stopped.error?.code, 'RUN_EXCEEDS_BUDGET');
      assert.deepEqual(await roles(f, thread.id), ['user', 'assistant', 'tool', 'assistant']);

      await f.pool.projects.updateLimits(P, { budgets: { dailyUsd: 1_000 } });
      f.fake.script({ text: 'It is 3.' });
      const next = await (await f.pool.runs.start(P, 'adder', { input: 'so?', threadId: thread.id })).result;
      assert.equal(next.status, 'succeeded');
      const sent = f.fake.requests.at(-1)?.messages.map((m) => m.role);
      assert.deepEqual(sent, ['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
      assert.match(
        String(f.fake.requests.at(-1)?.messages[4]?.content),
        /no answer: the run ended with RUN_EXCEEDS_BUDGET/,
      );
    } finally {
      await f.close();
    }
  });
});
