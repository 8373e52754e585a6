/**
 * A provider that reports more usage than a call was allowed (output tokens beyond the
 * `max_tokens` it was sent, or a cost above the worst case reserved for the call) cannot spend a
 * budget past what was reserved: the call is charged at most its cap, and the discrepancy is
 * recorded (step event, run metadata), announced (`model.usage_exceeded_cap`) and counted
 * (`agentpool_model_usage_exceeded_cap_total`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentPoolEvent } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import type { RunEvent } from '../../src/run/stream.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

/** $1/1024 per token in and out: every cost is an exact binary fraction. */
const PER_MILLION = 1_000_000 / 1024;
const T0 = Date.UTC(2026, 0, 15, 12);
const CAP = 16;

/** A pool on the fake provider, with the project (and its daily budget, if any) and an agent capped at 16 tokens. */
async function fixture(dailyUsd?: number) {
  const f = await runFixture({
    clock: new ManualClock(T0),
    ttlSweepIntervalMs: 0,
    prices: { prices: { [MODEL]: { inputPerMillion: PER_MILLION, outputPerMillion: PER_MILLION } } },
  });
  const exceeded: Extract<AgentPoolEvent, { type: 'model.usage_exceeded_cap' }>[] = [];
  f.pool.events.on('*', (e) => {
    if (e.type === 'model.usage_exceeded_cap') exceeded.push(e);
  });
  await f.pool.projects.create({
    id: P,
    ...(dailyUsd !== undefined && { limits: { budgets: { dailyUsd } } }),
  });
  await f.pool.agents.create(P, { name: 'brief', model: MODEL, instructions: 'Be brief.', maxTokens: CAP });
  return { ...f, exceeded };
}
type Fixture = Awaited<ReturnType<typeof fixture>>;

/** Runs the agent once, collecting its events, while governance is read during the model call. */
async function runOnce(f: Fixture, reply: { prompt_tokens: number; completion_tokens: number }) {
  let reservedDuringCall = 0;
  f.fake.script(async () => {
    reservedDuringCall = (await f.pool.governance.usage(P)).budgets.daily.reservedUsd;
    return { text: 'Noted.', usage: reply };
  });
  const handle = await f.pool.runs.start(P, 'brief', { input: 'hello' });
  const events: RunEvent[] = [];
  for await (const e of handle.stream.events()) events.push(e);
  return { run: await handle.result, events, reservedDuringCall };
}

async function metric(f: Fixture): Promise<string | undefined> {
  const { body } = await f.pool.metrics.scrape();
  return body.split('\n').find((l) => l.startsWith('agentpool_model_usage_exceeded_cap_total{'));
}

describe('usage reported over the cap', () => {
  it('charges a call reported at 10× its output cap no more than its reservation, and says so everywhere', async () => {
    const f = await fixture(1);
    try {
      // $1 a day; the call's worst case is well under it, ten times the cap is not.
      const { run, events, reservedDuringCall } = await runOnce(f, {
        prompt_tokens: 10,
        completion_tokens: 10 * CAP,
      });
      assert.equal(run.status, 'succeeded');
      assert.ok(reservedDuringCall > 0 && reservedDuringCall < 1);
      const reportedUsd = (10 + 10 * CAP) / 1024;
      const chargedUsd = (10 + CAP) / 1024; // the output counted at the cap
      assert.ok(reportedUsd > reservedDuringCall, 'the reported price is more than was reserved');
      assert.equal(run.cost, chargedUsd);
      assert.ok(run.cost <= reservedDuringCall, 'charged at most the reservation');
      assert.equal(run.outputTokens, 10 * CAP, 'the record keeps the tokens the provider reported');

      const daily = (await f.pool.governance.usage(P)).budgets.daily;
      assert.equal(daily.spentUsd, chargedUsd, 'the budget was charged what the record says');
      assert.equal(daily.reservedUsd, 0);
      assert.equal(await f.pool.stores.runs.costSince(P, 0), chargedUsd);

      const expected = {
        model: MODEL,
        capTokens: CAP,
        reportedInputTokens: 10,
        reportedOutputTokens: 10 * CAP,
        reportedUsd,
        chargedUsd,
      };
      assert.equal(f.exceeded.length, 1);
      const { type, at, ...event } = f.exceeded[0] ?? assert.fail('no event');
      assert.equal(type, 'model.usage_exceeded_cap');
      assert.equal(at, T0);
      assert.deepEqual(event, { project: P, agent: 'brief', runId: run.id, ...expected });

      const step = events.find((e) => e.type === 'step.finished');
      assert.ok(step?.type === 'step.finished');
      assert.deepEqual(step.usageExceededCap, expected);
      assert.deepEqual(run.metadata['usageExceededCap'], {
        calls: 1,
        reportedOutputTokens: 10 * CAP,
        reportedUsd,
        chargedUsd,
      });
      assert.deepEqual(await f.pool.runs.get(P, run.id), run, 'the record is committed so');
      assert.equal(await metric(f), `agentpool_model_usage_exceeded_cap_total{model="${MODEL}"} 1`);
    } finally {
      await f.close();
    }
  });

  it('a budget of a few calls survives a provider that reports ten times the cap on every call', async () => {
    const budget = 0.25;
    const f = await fixture(budget);
    try {
      let admitted = 0;
      for (let i = 0; i < 20; i++) {
        f.fake.script({ text: 'Noted.', usage: { prompt_tokens: 10, completion_tokens: 10 * CAP } });
        const started = await f.pool.runs.start(P, 'brief', { input: 'hello' }).catch(() => undefined);
        if (started === undefined) break;
        admitted++;
        assert.equal((await started.result).status, 'succeeded');
      }
      assert.ok(admitted > 1, 'several runs were admitted');
      const spent = await f.pool.stores.runs.costSince(P, 0);
      assert.ok(spent <= budget, `spent $${spent} of $${budget}`);
      assert.equal((await f.pool.governance.usage(P)).budgets.daily.spentUsd, spent);
      assert.equal(f.exceeded.length, admitted);
    } finally {
      await f.close();
    }
  });

  it('charges at most the reserved worst case when the reported input is more than the prompt could hold', async () => {
    const f = await fixture(1_000);
    try {
      const { run, reservedDuringCall } = await runOnce(f, { prompt_tokens: 100_000, completion_tokens: 4 });
      assert.equal(run.status, 'succeeded');
      assert.equal(run.cost, reservedDuringCall, 'charged the worst case it reserved, not $97');
      assert.equal(run.inputTokens, 100_000);
      assert.equal(f.exceeded.length, 1);
      assert.equal(f.exceeded[0]?.capTokens, CAP);
      assert.equal(f.exceeded[0]?.reportedOutputTokens, 4, 'within the cap: it is the cost that is over');
      assert.equal(f.exceeded[0]?.chargedUsd, reservedDuringCall);
      assert.equal((await f.pool.governance.usage(P)).budgets.daily.spentUsd, run.cost);
    } finally {
      await f.close();
    }
  });

  it('without a budget, counts output at the agent’s maxTokens when the provider reports more', async () => {
    const f = await fixture();
    try {
      const { run } = await runOnce(f, { prompt_tokens: 10, completion_tokens: 100 });
      assert.equal(run.cost, (10 + CAP) / 1024);
      assert.equal(run.outputTokens, 100);
      assert.equal(f.exceeded.length, 1);
      assert.equal(await metric(f), `agentpool_model_usage_exceeded_cap_total{model="${MODEL}"} 1`);
    } finally {
      await f.close();
    }
  });

  it('reports nothing for usage within the cap', async () => {
    const f = await fixture(1);
    try {
      const { run, events } = await runOnce(f, { prompt_tokens: 10, completion_tokens: CAP });
      assert.equal(run.cost, (10 + CAP) / 1024);
      assert.equal(run.metadata['usageExceededCap'], undefined);
      const step = events.find((e) => e.type === 'step.finished');
      assert.ok(step?.type === 'step.finished' && step.usageExceededCap === undefined);
      assert.deepEqual(f.exceeded, []);
      assert.equal(await metric(f), undefined);
    } finally {
      await f.close();
    }
  });
});
