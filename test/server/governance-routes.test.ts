import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { buildServer } from '../../src/server/app.ts';
import { json } from './support.ts';

const ADMIN = 'admin-key-0123456789abcdef';
/** Noon UTC on a whole second: twelve hours to the daily reset. */
const T0 = Date.UTC(2026, 0, 15, 12);

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}
interface ProjectBody {
  id: string;
  limits: { quotas?: Record<string, number>; budgets?: Record<string, number> };
}
interface RunBody {
  id: string;
  status: string;
  cost: number;
}
interface UsageBody {
  project: string;
  quotas: Record<string, { limit: number | null; used: number }>;
  budgets: {
    daily: { limitUsd: number | null; spentUsd: number; reservedUsd: number; remainingUsd: number | null };
    monthly: { limitUsd: number | null; spentUsd: number };
    perRunUsd: number | null;
  };
}

async function server() {
  const clock = new ManualClock(T0);
  const pool: AgentPool = await createAgentPool({
    store: 'memory',
    ttlSweepIntervalMs: 0,
    clock,
    // The demo model, priced at $1/1024 a token so that runs spend something exact.
    prices: { prices: { 'demo/assistant': { inputPerMillion: 1e6 / 1024, outputPerMillion: 1e6 / 1024 } } },
  });
  const app: FastifyInstance = await buildServer(pool, { adminKey: ADMIN });
  return {
    pool,
    app,
    clock,
    close: async () => {
      try {
        await app.close();
      } finally {
        await pool.close();
      }
    },
  };
}
type Server = Awaited<ReturnType<typeof server>>;

const admin = { authorization: `Bearer ${ADMIN}` };

/** The value of one sample line of the exposition text. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('governance over HTTP', () => {
  let s: Server;
  let alpha: Record<string, string>;
  let beta: Record<string, string>;

  beforeEach(async () => {
    s = await server();
    for (const id of ['alpha', 'beta']) await s.pool.projects.create({ id });
    alpha = { authorization: `Bearer ${(await s.pool.projects.createKey('alpha')).key}` };
    beta = { authorization: `Bearer ${(await s.pool.projects.createKey('beta')).key}` };
    await s.pool.agents.create('alpha', { name: 'support', maxTokens: 16 });
  });
  afterEach(() => s.close());

  const patchLimits = (id: string, limits: unknown, headers: Record<string, string> = admin) =>
    s.app.inject({ method: 'PATCH', url: `/v1/projects/${id}`, headers, payload: { limits } as object });
  const usage = (id: string, headers: Record<string, string>) =>
    s.app.inject({ url: `/v1/projects/${id}/usage`, headers });
  const newThread = async () =>
    json<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/threads', headers: alpha })).id;
  const startRun = (payload: Record<string, unknown>) =>
    s.app.inject({ method: 'POST', url: '/v1/agents/support/runs', headers: alpha, payload });
  /** What the thread holds: its runs and messages. */
  const recorded = async (threadId: string) => ({
    runs: json<{ data: unknown[] }>(
      await s.app.inject({ url: `/v1/threads/${threadId}/runs`, headers: alpha }),
    ).data.length,
    messages: json<{ data: unknown[] }>(
      await s.app.inject({ url: `/v1/threads/${threadId}/messages`, headers: alpha }),
    ).data.length,
  });

  describe('runs refused after admission', () => {
    it('a run refused for its thread (404) takes nothing from the runs-per-minute quota', async () => {
      assert.equal((await patchLimits('alpha', { quotas: { runsPerMinute: 2 } })).statusCode, 200);
      const missing = await startRun({ input: 'hi', threadId: 'thr_00000000000000000000000000' });
      assert.equal(missing.statusCode, 404, missing.body);
      for (let i = 0; i < 2; i++) assert.equal((await startRun({ input: `run ${i}` })).statusCode, 200);
      const third = await startRun({ input: 'one too many' });
      assert.equal(third.statusCode, 429);
      assert.equal(json<ErrorBody>(third).error.code, 'RATE_LIMITED');
    });
  });

  describe('maxAgents', () => {
    it('refuses an agent beyond the quota with 429 QUOTA_EXCEEDED, even when many are created at once', async () => {
      assert.equal((await patchLimits('beta', { quotas: { maxAgents: 3 } })).statusCode, 200);
      const creates = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          s.app.inject({ method: 'POST', url: '/v1/agents', headers: beta, payload: { name: `a${i}` } }),
        ),
      );
      const made = creates.filter((r) => r.statusCode === 201).length;
      assert.equal(made, 3);
      for (const r of creates.filter((c) => c.statusCode !== 201)) {
        assert.equal(r.statusCode, 429);
        const error = json<ErrorBody>(r).error;
        assert.equal(error.code, 'QUOTA_EXCEEDED');
        assert.deepEqual([error.details['quota'], error.details['limit']], ['maxAgents', 3]);
        assert.equal(r.headers['retry-after'], undefined, 'only deleting an agent frees the quota');
      }
      const applied = await s.app.inject({
        method: 'PUT',
        url: '/v1/agents/late',
        headers: beta,
        payload: {},
      });
      assert.equal(applied.statusCode, 429);
      const listed = json<{ data: unknown[] }>(await s.app.inject({ url: '/v1/agents', headers: beta }));
      assert.equal(listed.data.length, 3);
      // Updating an agent the project has is not creating one.
      const patched = await s.app.inject({
        method: 'PATCH',
        url: '/v1/agents/a0',
        headers: beta,
        payload: { instructions: 'changed' },
      });
      assert.equal(patched.statusCode, 200, patched.body);
    });
  });

  describe('project limits (admin)', () => {
    it('creates a project with limits, changes them field by field (null clears one), and reads its usage', async () => {
      const created = await s.app.inject({
        method: 'POST',
        url: '/v1/projects',
        headers: admin,
        payload: {
          id: 'gamma',
          limits: { quotas: { maxConcurrentRuns: 2, runsPerMinute: 10 }, budgets: { dailyUsd: 5 } },
        },
      });
      assert.equal(created.statusCode, 201, created.body);
      assert.deepEqual(json<ProjectBody>(created).limits, {
        quotas: { maxConcurrentRuns: 2, runsPerMinute: 10 },
        budgets: { dailyUsd: 5 },
      });

      const patched = await patchLimits('gamma', {
        quotas: { runsPerMinute: null, tokensPerMinute: 1000 },
        budgets: { monthlyUsd: 50 },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual(json<ProjectBody>(patched).limits, {
        quotas: { maxConcurrentRuns: 2, tokensPerMinute: 1000 },
        budgets: { dailyUsd: 5, monthlyUsd: 50 },
      });
      const cleared = await patchLimits('gamma', { budgets: null });
      assert.equal(cleared.statusCode, 200, cleared.body);
      assert.deepEqual(json<ProjectBody>(cleared).limits, {
        quotas: { maxConcurrentRuns: 2, tokensPerMinute: 1000 },
      });
      const read = json<ProjectBody>(await s.app.inject({ url: '/v1/projects/gamma', headers: admin }));
      assert.deepEqual(read.limits, json<ProjectBody>(cleared).limits, 'the change is stored');

      const res = await usage('gamma', admin);
      assert.equal(res.statusCode, 200, res.body);
      const body = json<UsageBody>(res);
      assert.equal(body.project, 'gamma');
      assert.deepEqual(body.quotas, {
        maxAgents: { limit: null, used: 0 },
        maxConcurrentRuns: { limit: 2, used: 0 },
        runsPerMinute: { limit: null, used: 0 },
        tokensPerMinute: { limit: 1000, used: 0 },
      });
      assert.equal(body.budgets.daily.limitUsd, null);
      assert.equal(body.budgets.monthly.limitUsd, null);
      assert.equal(body.budgets.perRunUsd, null);
    });

    it('rejects an unknown or bad limit with 400 naming the field, and changes nothing', async () => {
      const accepted = await patchLimits('alpha', { quotas: { maxConcurrentRuns: 3 } });
      assert.equal(accepted.statusCode, 200);
      const before = json<ProjectBody>(accepted).limits;
      assert.deepEqual(before.quotas, { maxConcurrentRuns: 3 });
      const cases: [unknown, string][] = [
        [{ quotas: { perHour: 1 } }, 'limits.quotas.perHour'],
        [{ budgets: { weeklyUsd: 1 } }, 'limits.budgets.weeklyUsd'],
        [{ spending: {} }, 'limits.spending'],
        [{ budgets: { dailyUsd: -1 } }, 'limits.budgets.dailyUsd'],
        [{ quotas: { runsPerMinute: 1.5 } }, 'limits.quotas.runsPerMinute'],
      ];
      for (const [limits, field] of cases) {
        const res = await patchLimits('alpha', limits);
        assert.equal(res.statusCode, 400, `${JSON.stringify(limits)}: ${res.body}`);
        const { error } = json<ErrorBody>(res);
        assert.equal(error.code, 'VALIDATION_FAILED');
        assert.equal(error.details['field'], field, JSON.stringify(limits));
        assert.match(error.message, new RegExp(field.replace(/\./g, '\\.')));
      }
      const missing = await s.app.inject({
        method: 'PATCH',
        url: '/v1/projects/alpha',
        headers: admin,
        payload: {},
      });
      assert.equal(missing.statusCode, 400);
      assert.equal(json<ErrorBody>(missing).error.details['field'], 'limits');
      const project = json<ProjectBody>(await s.app.inject({ url: '/v1/projects/alpha', headers: admin }));
      assert.deepEqual(project.limits, before, 'no refused change was applied');

      const badCreate = await s.app.inject({
        method: 'POST',
        url: '/v1/projects',
        headers: admin,
        payload: { id: 'delta', limits: { quotas: { maxAgents: 'many' } } },
      });
      assert.equal(badCreate.statusCode, 400);
      assert.equal(json<ErrorBody>(badCreate).error.details['field'], 'limits.quotas.maxAgents');
      assert.equal((await s.app.inject({ url: '/v1/projects/delta', headers: admin })).statusCode, 404);
    });

    it('only the admin changes limits; an unknown project is 404 PROJECT_NOT_FOUND', async () => {
      const byKey = await patchLimits('alpha', { quotas: { maxConcurrentRuns: 100 } }, alpha);
      assert.equal(byKey.statusCode, 403);
      assert.equal(json<ErrorBody>(byKey).error.code, 'FORBIDDEN');
      const unknown = await patchLimits('nope', { quotas: { maxConcurrentRuns: 1 } });
      assert.equal(unknown.statusCode, 404);
      assert.equal(json<ErrorBody>(unknown).error.code, 'PROJECT_NOT_FOUND');
    });
  });

  describe('usage', () => {
    it("a project key reads its own project's usage, and another project's is 404 PROJECT_NOT_FOUND", async () => {
      await patchLimits('alpha', { quotas: { maxConcurrentRuns: 4 } });
      const own = await usage('alpha', alpha);
      assert.equal(own.statusCode, 200, own.body);
      assert.deepEqual(json<UsageBody>(own).quotas['maxConcurrentRuns'], { limit: 4, used: 0 });
      assert.equal(json<UsageBody>(own).quotas['maxAgents']?.used, 1, 'alpha holds one agent');

      for (const [id, headers] of [
        ['beta', alpha],
        ['alpha', beta],
        ['nope', alpha],
        ['nope', admin],
      ] as const) {
        const res = await usage(id, headers);
        assert.equal(res.statusCode, 404, `${id}: ${res.body}`);
        assert.equal(json<ErrorBody>(res).error.code, 'PROJECT_NOT_FOUND');
      }
      const project = await s.app.inject({ url: '/v1/projects/alpha', headers: alpha });
      assert.equal(project.statusCode, 403, 'a project key reads usage, not the project record');
      assert.equal((await usage('beta', admin)).statusCode, 200, 'the admin reads any project');
    });

    it('shows runs in flight, runs and tokens of the last minute, and money spent', async () => {
      await patchLimits('alpha', { budgets: { dailyUsd: 10 } });
      const run = json<RunBody>(await startRun({ input: 'hello' }));
      assert.equal(run.status, 'succeeded');
      assert.ok(run.cost > 0, 'the demo model is priced in this pool');
      const body = json<UsageBody>(await usage('alpha', alpha));
      assert.equal(body.quotas['runsPerMinute']?.used, 1);
      assert.equal(body.quotas['maxConcurrentRuns']?.used, 0);
      assert.ok((body.quotas['tokensPerMinute']?.used ?? 0) > 0);
      assert.deepEqual(
        (({ limitUsd, spentUsd, reservedUsd, remainingUsd }) => ({
          limitUsd,
          spentUsd,
          reservedUsd,
          remainingUsd,
        }))(body.budgets.daily),
        { limitUsd: 10, spentUsd: run.cost, reservedUsd: 0, remainingUsd: 10 - run.cost },
      );
    });
  });

  describe('refused runs', () => {
    it('QUOTA_EXCEEDED: 429 with Retry-After, the error body, and nothing recorded', async () => {
      await patchLimits('alpha', { quotas: { maxConcurrentRuns: 0 } });
      const threadId = await newThread();
      const res = await startRun({ input: 'hello', threadId });
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.headers['retry-after'], '1');
      const { error } = json<ErrorBody>(res);
      assert.equal(error.code, 'QUOTA_EXCEEDED');
      assert.equal(error.details['quota'], 'maxConcurrentRuns');
      assert.equal(typeof error.message, 'string');
      assert.deepEqual(await recorded(threadId), { runs: 0, messages: 0 });
      assert.equal(s.pool.runs.activeCount, 0);
    });

    it('RATE_LIMITED: 429 with a Retry-After that says when the minute frees a place, and nothing recorded', async () => {
      await patchLimits('alpha', { quotas: { runsPerMinute: 1 } });
      const threadId = await newThread();
      assert.equal(json<RunBody>(await startRun({ input: 'first', threadId })).status, 'succeeded');
      s.clock.advance(15_000);
      const res = await startRun({ input: 'second', threadId });
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.headers['retry-after'], '45');
      const { error } = json<ErrorBody>(res);
      assert.equal(error.code, 'RATE_LIMITED');
      assert.equal(error.details['retryAfterSeconds'], 45);
      assert.deepEqual(await recorded(threadId), { runs: 1, messages: 2 }, 'only the first run');
      s.clock.advance(45_000);
      assert.equal((await startRun({ input: 'third', threadId })).statusCode, 200);
    });

    it('RUN_EXCEEDS_BUDGET: 422 without Retry-After when one model call could cost more than the whole budget, and nothing recorded', async () => {
      // 'hello' (62 bytes of prompt) and 16 output tokens cost at most 78/1024 dollars: more than
      // one cent, every day.
      await patchLimits('alpha', { budgets: { dailyUsd: 0.01 } });
      const threadId = await newThread();
      const res = await startRun({ input: 'hello', threadId, stream: true });
      assert.equal(res.statusCode, 422, res.body);
      assert.equal(res.headers['retry-after'], undefined, 'waiting cannot help');
      const { error } = json<ErrorBody>(res);
      assert.equal(error.code, 'RUN_EXCEEDS_BUDGET');
      assert.equal(error.details['window'], 'daily');
      assert.equal(error.details['maxTokens'], 16);
      assert.match(error.message, /maxTokens of 16 output tokens/);
      assert.deepEqual(await recorded(threadId), { runs: 0, messages: 0 });
      const daily = json<UsageBody>(await usage('alpha', alpha)).budgets.daily;
      assert.equal(daily.reservedUsd, 0);
    });

    it('BUDGET_EXHAUSTED: 429 with a Retry-After to the next UTC midnight, and nothing recorded', async () => {
      const earlier = json<RunBody>(await startRun({ input: 'x'.repeat(2000) }));
      assert.equal(earlier.status, 'succeeded');
      // 'hello' and 16 output tokens cost at most 78/1024 dollars, which fits $0.1, but the day
      // already spent more than that.
      assert.ok(earlier.cost > 0.1, `spent $${earlier.cost}`);
      await patchLimits('alpha', { budgets: { dailyUsd: 0.1 } });
      const threadId = await newThread();
      const res = await startRun({ input: 'hello', threadId, stream: true });
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.headers['retry-after'], String(12 * 3600));
      const { error } = json<ErrorBody>(res);
      assert.equal(error.code, 'BUDGET_EXHAUSTED');
      assert.equal(error.details['window'], 'daily');
      assert.equal(error.details['resetsAt'], '2026-01-16T00:00:00.000Z');
      assert.deepEqual(await recorded(threadId), { runs: 0, messages: 0 });
      const daily = json<UsageBody>(await usage('alpha', alpha)).budgets.daily;
      assert.equal(daily.spentUsd, earlier.cost);
      assert.equal(daily.reservedUsd, 0);
    });

    it('the OpenAI-compatible routes answer a refusal with 429 and Retry-After too', async () => {
      await patchLimits('alpha', { quotas: { runsPerMinute: 0 } });
      const requests = [
        {
          url: '/v1/chat/completions',
          payload: { model: 'support', messages: [{ role: 'user', content: 'hi' }] },
        },
        { url: '/v1/responses', payload: { model: 'support', input: 'hi' } },
      ];
      for (const { url, payload } of requests) {
        const res = await s.app.inject({ method: 'POST', url, headers: alpha, payload });
        assert.equal(res.statusCode, 429, `${url}: ${res.body}`);
        const { error } = json<{ error: { code: string; type: string } }>(res);
        assert.equal(error.code, 'RATE_LIMITED');
        assert.equal(error.type, 'rate_limit_error');
        assert.equal(res.headers['retry-after'], '60', `${url} tells OpenAI clients when to retry`);
      }
    });

    it('a limit changed by the admin applies to the next run at once', async () => {
      const threadId = await newThread();
      assert.equal((await startRun({ input: 'one', threadId })).statusCode, 200);
      await patchLimits('alpha', { quotas: { maxConcurrentRuns: 0 } });
      assert.equal((await startRun({ input: 'two', threadId })).statusCode, 429);
      await patchLimits('alpha', { quotas: { maxConcurrentRuns: null } });
      assert.equal((await startRun({ input: 'three', threadId })).statusCode, 200);
    });
  });

  it('/metrics counts refusals by project and code and shows what budgets spent', async () => {
    await patchLimits('alpha', { quotas: { runsPerMinute: 1 }, budgets: { dailyUsd: 10 } });
    const run = json<RunBody>(await startRun({ input: 'hello' }));
    assert.equal(run.status, 'succeeded');
    assert.equal((await startRun({ input: 'again' })).statusCode, 429);
    assert.equal((await startRun({ input: 'and again' })).statusCode, 429);
    const res = await s.app.inject({ url: '/metrics', headers: admin });
    assert.equal(res.statusCode, 200);
    const text = res.body;
    assert.equal(sample(text, 'agentpool_governance_refusals_total{project="alpha",code="RATE_LIMITED"}'), 2);
    assert.equal(sample(text, 'agentpool_budget_spent_usd{project="alpha",window="daily"}'), run.cost);
    assert.equal(
      sample(text, 'agentpool_budget_remaining_usd{project="alpha",window="daily"}'),
      10 - run.cost,
    );
    assert.equal(
      sample(text, 'agentpool_budget_remaining_usd{project="alpha",window="monthly"}'),
      undefined,
      'no monthly limit, no remaining',
    );
    assert.equal(sample(text, 'agentpool_project_runs_in_flight{project="alpha"}'), 0);
  });
});
