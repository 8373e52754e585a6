/**
 * Budgets and quotas counted once for three `agentpool serve` processes: 200 runs at once over the
 * three nodes against a nearly spent daily budget spend at most the budget (refusals are 429
 * BUDGET_EXHAUSTED), and a project's limit of 3 concurrent runs holds cluster-wide (the fake
 * provider never sees more than 3 calls of it at once).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ApiRun, clusterForSuite } from '../support/cluster.ts';
import type { FakeChatRequest, FakeReply } from '../support/fake-openai.ts';

/** $1/512 per token: every cost and sum is an exact binary fraction. */
const PER_MILLION = 1_000_000 / 512;

let inFlight = 0;
let maxInFlight = 0;

/** `billed`: a token per character sent and the whole output cap; `slow`: 600 ms, counted in flight. */
async function reply(req: FakeChatRequest): Promise<FakeReply> {
  if (req.model === 'slow') {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 600));
    inFlight--;
    return { text: 'slowly done' };
  }
  return {
    text: 'Noted.',
    usage: { prompt_tokens: JSON.stringify(req.messages).length, completion_tokens: 16 },
  };
}

describe('budgets and quotas across three nodes', () => {
  const suite = clusterForSuite({
    label: 'budgets',
    fake: { handler: reply },
    config: [
      'prices:',
      `  "openai-compatible/billed": { inputPerMillion: ${PER_MILLION}, outputPerMillion: ${PER_MILLION} }`,
      '',
    ].join('\n'),
  });

  /** Starts a run in `project` through node i; the status and the run or error. */
  const start = async (i: number, project: string, agent: string, input: string) => {
    const response = await suite.cluster.call(
      i,
      'POST',
      `/v1/agents/${agent}/runs`,
      { input },
      {
        'agentpool-project': project,
      },
    );
    const body = (await response.json()) as ApiRun & { error: { code: string; message: string } | null };
    return { status: response.status, body };
  };

  it('200 runs over three nodes racing for a nearly spent daily budget overspend by $0', async () => {
    const c = suite.cluster;
    const budget = 2; // 1024 tokens
    const created = await c.call(0, 'POST', '/v1/projects', {
      id: 'acme',
      limits: { budgets: { dailyUsd: budget } },
    });
    assert.equal(created.status, 201, await created.text());
    const agent = {
      name: 'brief',
      model: 'openai-compatible/billed',
      instructions: 'Be brief.',
      maxTokens: 16,
    };
    const put = await c.call(1, 'PUT', '/v1/agents/brief', agent, { 'agentpool-project': 'acme' });
    assert.equal(put.status, 201, await put.text());
    // Spend most of the budget for real first, on every node.
    for (let i = 0; i < 6; i++) {
      const warmUp = await start(i % 3, 'acme', 'brief', `warm-up ${i}`);
      assert.equal(warmUp.body.status, 'succeeded', JSON.stringify(warmUp));
    }
    const seeded = await spent(c.query.bind(c));
    assert.ok(seeded > budget / 2 && seeded < budget, `$${seeded} of $${budget} spent beforehand`);
    const requestsBefore = c.fake.requests.length;

    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, k) => start(k % 3, 'acme', 'brief', `run ${k}`)),
    );
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    assert.ok(admitted.length > 0, 'some runs were admitted');
    assert.ok(refused.length > 150, `most were refused (${refused.length})`);
    assert.deepEqual(
      new Set(refused.map((a) => `${a.status} ${a.body.error?.code}`)),
      new Set(['429 BUDGET_EXHAUSTED']),
    );
    for (const a of admitted) {
      assert.ok(
        a.body.status === 'succeeded' || a.body.error?.code === 'BUDGET_EXHAUSTED',
        JSON.stringify(a.body),
      );
    }
    const succeeded = admitted.filter((a) => a.body.status === 'succeeded');
    assert.equal(c.fake.requests.length - requestsBefore, succeeded.length, 'no call without a reservation');

    const total = await spent(c.query.bind(c));
    assert.equal(
      total,
      seeded + succeeded.reduce((sum, a) => sum + a.body.cost, 0),
      'the store holds every cost',
    );
    assert.ok(total <= budget, `overspent by $${total - budget}`);
    console.log(
      `budget $${budget}: $${seeded} spent before, ${succeeded.length} of 200 admitted runs succeeded, $${total} spent in all (overspend 0)`,
    );
    const usage = (await (await c.call(2, 'GET', '/v1/projects/acme/usage')).json()) as {
      budgets: { daily: { spentUsd: number } };
    };
    assert.equal(usage.budgets.daily.spentUsd, total, "the cluster's window spent what the store says");
  });

  it('maxConcurrentRuns 3 holds cluster-wide: 30 slow runs over three nodes, never more than 3 at the provider', async () => {
    const c = suite.cluster;
    const created = await c.call(1, 'POST', '/v1/projects', {
      id: 'narrow',
      limits: { quotas: { maxConcurrentRuns: 3 } },
    });
    assert.equal(created.status, 201, await created.text());
    const put = await c.call(
      2,
      'PUT',
      '/v1/agents/slow',
      { model: 'openai-compatible/slow', instructions: 'Take your time.' },
      {
        'agentpool-project': 'narrow',
      },
    );
    assert.equal(put.status, 201, await put.text());
    maxInFlight = 0;
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, k) => start(k % 3, 'narrow', 'slow', `slow ${k}`)),
    );
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    for (const a of admitted) assert.equal(a.body.status, 'succeeded', JSON.stringify(a.body));
    assert.deepEqual(
      new Set(refused.map((a) => `${a.status} ${a.body.error?.code}`)),
      new Set(['429 QUOTA_EXCEEDED']),
    );
    assert.ok(admitted.length >= 3, `at least the 3 places were used (${admitted.length})`);
    assert.ok(maxInFlight <= 3, `${maxInFlight} runs were at the provider at once`);
    assert.equal(maxInFlight, 3, 'the three places were in use together');
    console.log(`maxConcurrentRuns 3: ${admitted.length} of 30 admitted, at most ${maxInFlight} in flight`);
  });
});

/** The sum of the costs of project acme's runs, as the store holds them. */
async function spent(query: (text: string) => Promise<{ total: number | null }[]>): Promise<number> {
  const [row] = await query(`SELECT sum(cost) AS total FROM runs WHERE project = 'acme'`);
  return Number(row?.total ?? 0);
}
