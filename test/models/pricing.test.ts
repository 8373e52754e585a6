import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { DEFAULT_MODEL_PRICES, type ModelPrice, PriceTable } from '../../src/models/pricing.ts';

const failsOn = (field: string) => (err: unknown) =>
  isAgentPoolError(err, 'VALIDATION_FAILED') &&
  err.details['field'] === field &&
  err.message.startsWith(field);

describe('price table', () => {
  it('ships defaults for common OpenAI and Anthropic models, and demo models are free', () => {
    const table = new PriceTable();
    for (const model of [
      'openai/gpt-4o',
      'openai/gpt-4o-mini',
      'openai/gpt-4.1',
      'openai/gpt-4.1-mini',
      'anthropic/claude-sonnet-4',
      'anthropic/claude-3-5-haiku',
    ]) {
      const price = table.priceOf(model);
      assert.ok(price !== undefined, `${model} has a price`);
      assert.ok(price.inputPerMillion > 0 && price.outputPerMillion > price.inputPerMillion, model);
    }
    assert.deepEqual(table.priceOf('demo/assistant'), { inputPerMillion: 0, outputPerMillion: 0 });
    assert.deepEqual(table.costOf('demo/anything', { inputTokens: 1e6, outputTokens: 1e6 }), {
      usd: 0,
      known: true,
      matched: 'demo/*',
    });
  });

  it('pins the default prices', () => {
    assert.deepEqual(DEFAULT_MODEL_PRICES['openai/gpt-4o'], { inputPerMillion: 2.5, outputPerMillion: 10 });
    assert.deepEqual(DEFAULT_MODEL_PRICES['openai/gpt-4o-mini'], {
      inputPerMillion: 0.15,
      outputPerMillion: 0.6,
    });
    assert.deepEqual(DEFAULT_MODEL_PRICES['anthropic/claude-sonnet-4'], {
      inputPerMillion: 3,
      outputPerMillion: 15,
    });
  });

  it('computes cost in USD from input and output tokens', () => {
    const table = new PriceTable();
    const cost = table.costOf('openai/gpt-4o', { inputTokens: 1_000_000, outputTokens: 500_000 });
    assert.equal(cost.known, true);
    assert.equal(cost.matched, 'openai/gpt-4o');
    assert.ok(Math.abs(cost.usd - (2.5 + 5)) < 1e-9, `got ${cost.usd}`);
    const small = table.costOf('openai/gpt-4o-mini', { inputTokens: 1000, outputTokens: 200 });
    assert.ok(Math.abs(small.usd - (1000 * 0.15 + 200 * 0.6) / 1e6) < 1e-12);
  });

  it('reports an unknown model as costing 0 with known: false', () => {
    const cost = new PriceTable().costOf('openai-compatible/llama3', {
      inputTokens: 1000,
      outputTokens: 1000,
    });
    assert.deepEqual(cost, { usd: 0, known: false });
    assert.equal(new PriceTable().priceOf('nonsense'), undefined);
  });

  it('treats missing, negative or non-finite token counts as zero', () => {
    const table = new PriceTable();
    assert.equal(table.costOf('openai/gpt-4o', {}).usd, 0);
    assert.equal(table.costOf('openai/gpt-4o', { inputTokens: -5, outputTokens: Number.NaN }).usd, 0);
  });

  it('prices dated snapshots and aliases like their base model', () => {
    const table = new PriceTable();
    assert.equal(table.lookup('openai/gpt-4o-2024-08-06')?.key, 'openai/gpt-4o');
    assert.equal(table.lookup('anthropic/claude-sonnet-4-20250514')?.key, 'anthropic/claude-sonnet-4');
    assert.equal(table.lookup('anthropic/claude-3-5-haiku-latest')?.key, 'anthropic/claude-3-5-haiku');
    assert.equal(table.lookup('openai/gpt-4o-mini-2024-07-18')?.key, 'openai/gpt-4o-mini');
    // A different model sharing a prefix is not the same model.
    assert.equal(table.lookup('openai/gpt-4.1-nano'), undefined);
  });

  it('lets options override defaults and add models, including provider/* wildcards', () => {
    const table = new PriceTable({
      prices: {
        'openai/gpt-4o': { inputPerMillion: 1, outputPerMillion: 2 },
        'openai-compatible/*': { inputPerMillion: 0.1, outputPerMillion: 0.2 },
        'openai-compatible/special': { inputPerMillion: 5, outputPerMillion: 5 },
      },
    });
    assert.deepEqual(table.priceOf('openai/gpt-4o'), { inputPerMillion: 1, outputPerMillion: 2 });
    assert.deepEqual(table.priceOf('openai/gpt-4o-mini'), DEFAULT_MODEL_PRICES['openai/gpt-4o-mini']);
    assert.equal(table.lookup('openai-compatible/llama3')?.key, 'openai-compatible/*');
    assert.equal(
      table.lookup('openai-compatible/special')?.key,
      'openai-compatible/special',
      'exact beats wildcard',
    );
    const cost = table.costOf('openai-compatible/llama3', { inputTokens: 2_000_000, outputTokens: 0 });
    assert.ok(Math.abs(cost.usd - 0.2) < 1e-12);
  });

  it('can start without the defaults', () => {
    const table = new PriceTable({
      includeDefaults: false,
      prices: { 'x/y': { inputPerMillion: 1, outputPerMillion: 1 } },
    });
    assert.equal(table.priceOf('openai/gpt-4o'), undefined);
    assert.deepEqual(
      table.entries().map(([k]) => k),
      ['x/y'],
    );
  });

  it('rejects negative, non-finite or missing prices, naming the field', () => {
    const bad = (price: unknown) => () =>
      new PriceTable({ prices: { 'openai/gpt-4o': price as ModelPrice } });
    assert.throws(
      bad({ inputPerMillion: -1, outputPerMillion: 1 }),
      failsOn('prices["openai/gpt-4o"].inputPerMillion'),
    );
    assert.throws(
      bad({ inputPerMillion: 1, outputPerMillion: Number.POSITIVE_INFINITY }),
      failsOn('prices["openai/gpt-4o"].outputPerMillion'),
    );
    assert.throws(bad({ inputPerMillion: 1 }), failsOn('prices["openai/gpt-4o"].outputPerMillion'));
    assert.throws(
      bad({ inputPerMillion: '1', outputPerMillion: 1 }),
      failsOn('prices["openai/gpt-4o"].inputPerMillion'),
    );
    assert.throws(bad(3), failsOn('prices["openai/gpt-4o"]'));
    assert.throws(
      bad({ inputPerMillion: 1, outputPerMillion: 1, cachedPerMillion: 1 }),
      failsOn('prices["openai/gpt-4o"].cachedPerMillion'),
    );
  });

  it('rejects keys that are not provider/model-id or provider/*', () => {
    assert.throws(
      () => new PriceTable({ prices: { 'gpt-4o': { inputPerMillion: 1, outputPerMillion: 1 } } }),
      failsOn('prices["gpt-4o"]'),
    );
  });

  it('is not changed by mutating what entries() returns', () => {
    const table = new PriceTable();
    for (const [, price] of table.entries()) price.inputPerMillion = 999;
    assert.equal(table.priceOf('openai/gpt-4o')?.inputPerMillion, 2.5);
  });
});
