/**
 * The acceptance test of budgets: runs racing for the last cents of a project's budget, over the
 * real run path (fake OpenAI-compatible server over HTTP, memory stores), never spend more than
 * the budget, and what governance holds afterwards is exactly what the store says was spent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { type AgentPoolError, isAgentPoolError } from '../../src/core/errors.ts';
import type { RunHandle } from '../../src/run/runs.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import type { FakeChatRequest, FakeHandler, FakeReply } from '../support/fake-openai.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

/**
 * $1/512 per token in and out: every cost, reservation and sum of them is an exact binary
 * fraction with at most nine decimals, so it is also on the nano-dollar grid costs are rounded to
 * (core/money.ts), and "nothing overspent" is checked to the last bit, with no rounding slack.
 */
const PER_MILLION = 1_000_000 / 512;
const T0 = Date.UTC(2026, 0, 15, 12);

async function fixture() {
  return runFixture({
    clock: new ManualClock(T0), // no UTC midnight in the middle of a test
    ttlSweepIntervalMs: 0,
    prices: { prices: { [MODEL]: { inputPerMillion: PER_MILLION, outputPerMillion: PER_MILLION } } },
  });
}
type Fixture = Awaited<ReturnType<typeof fixture>>;

/** Starts `n` stateless runs at once; splits them into admitted handles and refusals. */
async function startMany(f: Fixture, project: string, agent: string, n: number) {
  const settled = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => f.pool.runs.start(project, agent, { input: `question ${i}` })),
  );
  const admitted: RunHandle[] = [];
  const refusals: AgentPoolError[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') admitted.push(s.value);
    else {
      assert.ok(isAgentPoolError(s.reason), String(s.reason));
      refusals.push(s.reason);
    }
  }
  return { admitted, refusals };
}

const sum = (runs: readonly RunRecord[]) => runs.reduce((total, r) => total + r.cost, 0);

/** The code of a run's error, or its status when it has none. */
const outcome = (r: RunRecord) => r.error?.code ?? r.status;

/**
 * Bills a reply near the worst case the runner reserves for: a token per character of the
 * messages sent (as a byte-level tokenizer might) and the whole output cap of 16 tokens. Far
 * more than admission alone reserves, so a model call made without its own reservation overspends.
 */
function billed(reply: FakeReply): FakeHandler {
  return (req) => ({
    ...reply,
    usage: { prompt_tokens: JSON.stringify(req.messages).length, completion_tokens: 16 },
  });
}

/** Answers with text. */
const echo = billed({ text: 'Noted.' });

/** Calls the add tool, then answers once it has the tool's result. */
const toolRound: FakeHandler = (req) =>
  billed(
    req.messages.some((m) => m.role === 'tool')
      ? { text: 'The sum is 3.' }
      : { toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] },
  )(req);

const ADDER = {
  name: 'adder',
  model: MODEL,
  instructions: 'Use the tool.',
  tools: ['custom:add'],
  maxTokens: 16,
};

/**
 * Runs the adder once in a project with room to spare, billed near the worst case, reading
 * governance while each model call is in flight: what the first step's call may cost at worst
 * (admission reserves two such calls for an agent with tools) and what it cost. Prompts hold no
 * ids, so the same agent and input reserve and cost the same in any project.
 */
async function measureAdder(f: Fixture): Promise<{ worst1: number; cost1: number }> {
  await f.pool.projects.create({ id: 'probe', limits: { budgets: { dailyUsd: 1_000 } } });
  await f.pool.agents.create('probe', ADDER);
  const seen: { reservedUsd: number; spentUsd: number }[] = [];
  const measure = (reply: FakeReply) => async (req: FakeChatRequest) => {
    const { reservedUsd, spentUsd } = (await f.pool.governance.usage('probe')).budgets.daily;
    seen.push({ reservedUsd, spentUsd });
    return billed(reply)(req);
  };
  f.fake.script(
    measure({ toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] }),
    measure({ text: 'The sum is 3.' }),
  );
  const probe = await (await f.pool.runs.start('probe', 'adder', { input: 'add 1 and 2' })).result;
  assert.equal(probe.status, 'succeeded');
  assert.equal(probe.steps, 2);
  const [step1, step2] = seen;
  assert.ok(step1 !== undefined && step2 !== undefined);
  assert.equal(step1.spentUsd, 0);
  const worst1 = step1.reservedUsd / 2;
  const cost1 = step2.spentUsd;
  assert.ok(cost1 > 0 && cost1 < worst1, 'a step costs less than its worst case');
  // Billed near its worst case, the first call leaves less than the second needs: it topped up.
  assert.ok(step2.reservedUsd > 2 * worst1 - cost1, 'the second call reserved more');
  return { worst1, cost1 };
}

describe('budgets under concurrency (acceptance)', () => {
  it('200 runs racing for a nearly spent daily budget: some admitted, the rest refused, not a cent overspent', async () => {
    const f = await fixture();
    try {
      const budget = 2; // $2: 1024 tokens
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: budget } } });
      await f.pool.agents.create(P, {
        name: 'brief',
        model: MODEL,
        instructions: 'Be brief.',
        maxTokens: 16,
      });
      f.fake.script(...Array.from({ length: 205 }, () => echo));
      // Spend part of the budget for real first.
      for (let i = 0; i < 5; i++) {
        const warmUp = await (await f.pool.runs.start(P, 'brief', { input: `warm-up ${i}` })).result;
        assert.equal(warmUp.status, 'succeeded');
        assert.ok(warmUp.cost > 0, 'the fake model is priced');
      }
      const seeded = await f.pool.stores.runs.costSince(P, 0);
      const requestsBefore = f.fake.requests.length;

      const { admitted, refusals } = await startMany(f, P, 'brief', 200);
      const results = await Promise.all(admitted.map((h) => h.result));

      assert.ok(admitted.length > 0, 'some runs were admitted');
      assert.ok(refusals.length > 0, 'some runs were refused');
      assert.deepEqual(new Set(refusals.map((e) => e.code)), new Set(['BUDGET_EXHAUSTED']));
      for (const e of refusals) {
        assert.equal(e.status, 429);
        assert.equal(e.details['window'], 'daily');
        assert.ok(Number(e.details['retryAfterSeconds']) >= 1);
      }
      // An admitted run either finished or was stopped by the budget before a model call.
      const outcomes = new Set(results.map(outcome));
      for (const o of outcomes) assert.ok(o === 'succeeded' || o === 'BUDGET_EXHAUSTED', `unexpected ${o}`);
      const succeeded = results.filter((r) => r.status === 'succeeded');
      for (const r of results.filter((r) => r.status !== 'succeeded')) {
        assert.equal(r.steps, 0);
        assert.equal(r.cost, 0);
      }
      assert.equal(
        f.fake.requests.length - requestsBefore,
        succeeded.length,
        'no model call was made without a reservation',
      );

      const spent = seeded + sum(results);
      assert.ok(spent <= budget, `spent $${spent} of a $${budget} budget`);
      const stored = await f.pool.stores.runs.costSince(P, 0);
      assert.equal(stored, spent, 'the store holds every cost');

      const daily = (await f.pool.governance.usage(P)).budgets.daily;
      assert.equal(daily.reservedUsd, 0, 'every reservation was settled or released');
      assert.equal(daily.spentUsd, stored, 'governance spent what the store says');
      assert.equal(daily.remainingUsd, budget - stored);
      assert.equal((await f.pool.governance.usage(P)).quotas.maxConcurrentRuns.used, 0);
    } finally {
      await f.close();
    }
  });

  it('a run whose later step cannot reserve its worst case fails with BUDGET_EXHAUSTED before calling the model again', async () => {
    const f = await fixture();
    try {
      const { worst1, cost1 } = await measureAdder(f);
      // Room for the two calls' worst case admission reserves for an agent with tools; billed
      // near its worst case, the first call leaves too little for the second, which sends more.
      const budget = 2 * worst1;
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: budget } } });
      await f.pool.agents.create(P, ADDER);
      const requestsBefore = f.fake.requests.length;
      const addsBefore = f.calls.add;
      f.fake.script(toolRound);
      const run = await (await f.pool.runs.start(P, 'adder', { input: 'add 1 and 2' })).result;

      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, 'BUDGET_EXHAUSTED');
      assert.match(run.error?.message ?? '', /daily budget/);
      assert.equal(run.steps, 1, 'the first step ran and was committed');
      assert.equal(f.calls.add, addsBefore + 1, 'its tool call ran');
      assert.equal(f.fake.requests.length, requestsBefore + 1, 'the second model call was never made');
      assert.equal(run.cost, cost1);
      assert.deepEqual(await f.pool.runs.get(P, run.id), run, 'the failure is committed');
      const daily = (await f.pool.governance.usage(P)).budgets.daily;
      assert.equal(daily.spentUsd, cost1);
      assert.ok(daily.spentUsd <= budget, 'nothing overspent');
      assert.equal(daily.reservedUsd, 0);
    } finally {
      await f.close();
    }
  });

  it('a run whose later call alone could cost more than the whole budget fails with RUN_EXCEEDS_BUDGET before making it', async () => {
    const f = await fixture();
    try {
      const { worst1, cost1 } = await measureAdder(f);
      // The first call's worst case fills the budget exactly; the second sends more, so its
      // worst case alone is more than the whole day's budget: no wait could make it fit.
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: worst1 } } });
      await f.pool.agents.create(P, ADDER);
      const requestsBefore = f.fake.requests.length;
      f.fake.script(toolRound);
      const run = await (await f.pool.runs.start(P, 'adder', { input: 'add 1 and 2' })).result;

      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, 'RUN_EXCEEDS_BUDGET');
      assert.match(run.error?.message ?? '', /maxTokens of 16 output tokens.*whole daily budget/);
      assert.equal(run.steps, 1);
      assert.equal(f.fake.requests.length, requestsBefore + 1, 'the second model call was never made');
      assert.equal(run.cost, cost1);
      const daily = (await f.pool.governance.usage(P)).budgets.daily;
      assert.equal(daily.spentUsd, cost1);
      assert.equal(daily.reservedUsd, 0);
    } finally {
      await f.close();
    }
  });

  it("a per-run cap stops each run before the call that could pass it, while the day's budget has room", async () => {
    const f = await fixture();
    try {
      const { worst1, cost1 } = await measureAdder(f);
      const cap = 2 * worst1; // both calls' worst case fit; not the first's cost and the second's worst case
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: 1_000, perRunUsd: cap } } });
      await f.pool.agents.create(P, ADDER);
      const requestsBefore = f.fake.requests.length;
      for (let i = 0; i < 2; i++) {
        f.fake.script(toolRound);
        const run = await (await f.pool.runs.start(P, 'adder', { input: 'add 1 and 2' })).result;
        assert.equal(run.error?.code, 'BUDGET_EXHAUSTED', `run ${i}`);
        assert.match(run.error?.message ?? '', /per-run cap/);
        assert.equal(run.steps, 1, 'each run has a cap of its own: the second gets as far as the first');
        assert.ok(run.cost <= cap);
      }
      assert.equal(f.fake.requests.length, requestsBefore + 2);
      const daily = (await f.pool.governance.usage(P)).budgets.daily;
      assert.equal(daily.spentUsd, 2 * cost1);
      assert.equal(daily.reservedUsd, 0);
    } finally {
      await f.close();
    }
  });

  it('100 multi-step runs racing for a budget: every run ends whole or stopped by the budget, and nothing overspends', async () => {
    const f = await fixture();
    try {
      const budget = 12; // room for a few dozen of the hundred
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: budget } } });
      await f.pool.agents.create(P, ADDER);
      f.fake.script(...Array.from({ length: 200 }, () => toolRound));

      const { admitted, refusals } = await startMany(f, P, 'adder', 100);
      const results = await Promise.all(admitted.map((h) => h.result));

      assert.ok(admitted.length > 0, 'some runs were admitted');
      const stopped = results.filter((r) => r.error?.code === 'BUDGET_EXHAUSTED');
      // Billing near the worst case leaves admitted runs little to carry into their second call,
      // so under this contention the budget may stop every one of them there: what matters is
      // that each ends whole or cleanly stopped, and that nothing overspends.
      assert.ok(refusals.length + stopped.length > 0, 'the budget stopped some runs');
      assert.deepEqual(
        new Set(refusals.map((e) => e.code)),
        new Set(refusals.length > 0 ? ['BUDGET_EXHAUSTED'] : []),
      );
      for (const r of results) {
        assert.ok(
          r.status === 'succeeded' || r.error?.code === 'BUDGET_EXHAUSTED',
          `unexpected ${outcome(r)}`,
        );
        if (r.status === 'succeeded') assert.equal(r.steps, 2);
      }
      const modelCalls = results.reduce((n, r) => n + r.steps, 0);
      assert.equal(f.fake.requests.length, modelCalls, 'every model call made was a committed step');

      const spent = sum(results);
      assert.ok(spent <= budget, `spent $${spent} of a $${budget} budget`);
      const stored = await f.pool.stores.runs.costSince(P, 0);
      assert.equal(stored, spent);
      const daily = (await f.pool.governance.usage(P)).budgets.daily;
      assert.equal(daily.reservedUsd, 0);
      assert.equal(daily.spentUsd, stored);
    } finally {
      await f.close();
    }
  });

  it('with ordinary usage, multi-step runs admitted against a tight budget carry their reservation on and finish', async () => {
    const f = await fixture();
    try {
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: 4 } } });
      await f.pool.agents.create(P, ADDER);
      // A cold start: admission sizes the tool definitions from the catalog, so what it reserves
      // covers the first call whole.
      // The fake's own token counts (about a quarter of the characters), far below the worst case.
      const plain: FakeHandler = (req) =>
        req.messages.some((m) => m.role === 'tool')
          ? { text: 'The sum is 3.' }
          : { toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }] };
      f.fake.script(...Array.from({ length: 200 }, () => plain));
      const { admitted, refusals } = await startMany(f, P, 'adder', 100);
      const results = await Promise.all(admitted.map((h) => h.result));
      assert.ok(refusals.length > 0, 'the budget refused some runs');
      const succeeded = results.filter((r) => r.status === 'succeeded');
      assert.ok(succeeded.length > 0, 'admitted runs finish');
      for (const r of results) assert.ok(r.status === 'succeeded' || r.error?.code === 'BUDGET_EXHAUSTED');
      assert.ok(sum(results) <= 4);
    } finally {
      await f.close();
    }
  });

  it('every run admitted against a contended budget gets to make its first model call', async () => {
    // Admission should reserve the first call's whole worst case (what the runner reserves before
    // it: the prompt as sent, framing and tool definitions included, plus the output cap), so an
    // admitted single-step run never fails at its first call for want of budget.
    const f = await fixture();
    try {
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: 1 } } });
      await f.pool.agents.create(P, {
        name: 'brief',
        model: MODEL,
        instructions: 'Be brief.',
        maxTokens: 16,
      });
      const { admitted, refusals } = await startMany(f, P, 'brief', 200);
      const results = await Promise.all(admitted.map((h) => h.result));
      assert.ok(refusals.length > 0);
      const starved = results.filter((r) => r.error?.code === 'BUDGET_EXHAUSTED' && r.steps === 0);
      assert.equal(
        starved.length,
        0,
        `${starved.length} of ${results.length} admitted runs failed with BUDGET_EXHAUSTED before any ` +
          `model call; ${results.filter((r) => r.status === 'succeeded').length} succeeded`,
      );
    } finally {
      await f.close();
    }
  });

  it('every run of an agent with tools admitted on a cold start gets to make its first model call', async () => {
    // No live instance knows the tool definitions when the first runs are admitted: admission
    // sizes them from the tool catalog, so the first call needs nothing more than was reserved.
    const f = await fixture();
    try {
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: 4 } } });
      await f.pool.agents.create(P, ADDER);
      f.fake.script(...Array.from({ length: 200 }, () => toolRound));
      const { admitted, refusals } = await startMany(f, P, 'adder', 100);
      const results = await Promise.all(admitted.map((h) => h.result));
      assert.ok(refusals.length > 0, 'the budget refused some runs');
      const starved = results.filter((r) => r.error !== null && r.steps === 0);
      assert.deepEqual(
        starved.map((r) => r.error?.code),
        [],
        'no admitted run failed before its first model call',
      );
      assert.ok(sum(results) <= 4);
    } finally {
      await f.close();
    }
  });
});
