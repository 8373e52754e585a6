/**
 * Money reads clean in answers: USD amounts are rounded to a nano-dollar where they are produced,
 * so a run whose two steps cost $0.0045 and $0.009 answers `0.0135` (the plain sum in floating
 * point is 0.013499999999999998), and so does the project's usage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { roundUsd } from '../../src/core/money.ts';
import { PriceTable } from '../../src/models/pricing.ts';
import { buildServer } from '../../src/server/app.ts';
import { MODEL, P, runFixture } from '../support/run-fixture.ts';

describe('money in answers', () => {
  it('roundUsd rounds to a nano-dollar and leaves amounts on that grid alone', () => {
    assert.equal(0.0045 + 0.009, 0.013499999999999998, 'the float sum this is about');
    assert.equal(roundUsd(0.0045 + 0.009), 0.0135);
    assert.equal(roundUsd(0.0000000015), 0.000000002);
    assert.equal(roundUsd(0.0135), 0.0135);
    assert.equal(roundUsd(37 / 512), 37 / 512);
    assert.equal(roundUsd(0), 0);
  });

  it('prices are rounded where they are computed', () => {
    const prices = new PriceTable({ prices: { 'x/y': { inputPerMillion: 0.3, outputPerMillion: 0.1 } } });
    assert.equal((333 * 0.3) / 1_000_000, 0.00009989999999999999, 'the raw product');
    assert.equal(prices.costOf('x/y', { inputTokens: 333 }).usd, 0.0000999);
    assert.equal(prices.costOf('x/y', { inputTokens: 7, outputTokens: 3 }).usd, 0.0000024);
  });

  describe('over HTTP, through a real run', () => {
    let f: Awaited<ReturnType<typeof runFixture>>;
    let app: FastifyInstance;
    before(async () => {
      f = await runFixture({
        ttlSweepIntervalMs: 0,
        // $100 per million input tokens: 45 tokens cost 0.0045, 90 cost 0.009 (token counts a prompt
        // of this size can really have, so no call is charged at its cap).
        prices: { prices: { [MODEL]: { inputPerMillion: 100, outputPerMillion: 0 } } },
      });
      app = await buildServer(f.pool, { project: P });
      await f.pool.projects.create({ id: P, limits: { budgets: { dailyUsd: 10 } } });
      await f.pool.agents.create(P, { name: 'adder', model: MODEL, tools: ['custom:add'] });
    });
    after(async () => {
      await app.close();
      await f.close();
    });

    it('a run costing 0.0045 + 0.009 answers cost 0.0135, and usage says 0.0135 spent', async () => {
      f.fake.script(
        {
          toolCalls: [{ name: 'add', arguments: { a: 1, b: 2 } }],
          usage: { prompt_tokens: 45, completion_tokens: 1 },
        },
        { text: 'The sum is 3.', usage: { prompt_tokens: 90, completion_tokens: 1 } },
      );
      const res = await app.inject({
        method: 'POST',
        url: '/v1/agents/adder/runs',
        payload: { input: 'add 1 and 2' },
      });
      assert.equal(res.statusCode, 200);
      assert.match(res.body, /"cost":0\.0135[,}]/);
      const run = res.json<{ id: string; cost: number; steps: number }>();
      assert.equal(run.steps, 2);
      assert.equal(run.cost, 0.0135);
      assert.equal(
        res.json<{ cost: number }>().cost,
        (await f.pool.runs.get(P, run.id)).cost,
        'library users read the same',
      );

      const usage = await app.inject({ url: `/v1/projects/${P}/usage` });
      assert.equal(usage.statusCode, 200);
      const daily = usage.json<{ budgets: { daily: { spentUsd: number; remainingUsd: number } } }>().budgets
        .daily;
      assert.equal(daily.spentUsd, 0.0135);
      assert.equal(daily.remainingUsd, 9.9865);
    });
  });
});
