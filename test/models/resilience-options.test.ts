import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import {
  type ModelResilienceOptions,
  resolveModelResilienceOptions,
} from '../../src/models/resilience-options.ts';

const rejects = (options: unknown, field: string) =>
  assert.throws(
    () => resolveModelResilienceOptions(options as ModelResilienceOptions),
    (err: unknown) => {
      assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), `expected VALIDATION_FAILED, got ${String(err)}`);
      assert.equal(err.details['field'], field);
      assert.ok(err.message.startsWith(field), `"${err.message}" starts with ${field}`);
      return true;
    },
  );

describe('model resilience options', () => {
  it('pins the defaults', () => {
    const o = resolveModelResilienceOptions();
    assert.deepEqual(o.defaults, {
      timeoutMs: 60_000,
      retry: { maxAttempts: 3, initialDelayMs: 250, maxDelayMs: 10_000, maxRetryAfterMs: 30_000 },
      breaker: {
        strategy: 'consecutive',
        threshold: 5,
        failureRatio: 0.5,
        minimumCalls: 10,
        windowMs: 30_000,
        halfOpenAfterMs: 10_000,
      },
      bulkhead: { maxConcurrent: 64, maxQueue: 256, maxQueuePerProject: 256 },
      rateLimit: { requestsPerMinute: undefined, tokensPerMinute: undefined },
    });
    assert.equal(o.models.size, 0);
    assert.equal(o.policyFor('openai/gpt-4o'), o.defaults);
  });

  it('merges per-model overrides field by field over the configured defaults', () => {
    const o = resolveModelResilienceOptions({
      timeoutMs: 5000,
      retry: { maxAttempts: 5, initialDelayMs: 100 },
      rateLimit: { requestsPerMinute: 600 },
      models: {
        'openai/gpt-4o': { retry: { maxAttempts: 2 }, rateLimit: { tokensPerMinute: 30_000 } },
      },
    });
    const gpt = o.policyFor('openai/gpt-4o');
    assert.equal(gpt.timeoutMs, 5000);
    assert.deepEqual(gpt.retry, {
      maxAttempts: 2,
      initialDelayMs: 100,
      maxDelayMs: 10_000,
      maxRetryAfterMs: 30_000,
    });
    assert.deepEqual(gpt.rateLimit, { requestsPerMinute: 600, tokensPerMinute: 30_000 });
    assert.deepEqual(gpt.breaker, o.defaults.breaker);
    assert.equal(o.policyFor('anthropic/claude-sonnet-4-5').retry.maxAttempts, 5);
  });

  it("lets the per-project queue bound follow maxQueue unless it is set, never above the level's maxQueue", () => {
    const o = resolveModelResilienceOptions({
      bulkhead: { maxQueue: 1000 },
      models: {
        'openai/a': { bulkhead: { maxQueue: 40 } },
        'openai/b': { bulkhead: { maxQueuePerProject: 10 } },
      },
    });
    assert.deepEqual(o.defaults.bulkhead, { maxConcurrent: 64, maxQueue: 1000, maxQueuePerProject: 1000 });
    assert.equal(o.policyFor('openai/a').bulkhead.maxQueuePerProject, 40);
    assert.equal(o.policyFor('openai/b').bulkhead.maxQueuePerProject, 10);
    const bounded = resolveModelResilienceOptions({
      bulkhead: { maxQueuePerProject: 100 },
      models: { 'openai/a': { bulkhead: { maxQueue: 500 } }, 'openai/b': { bulkhead: { maxQueue: 50 } } },
    });
    assert.equal(bounded.policyFor('openai/a').bulkhead.maxQueuePerProject, 100, 'a bound set stays');
    assert.equal(bounded.policyFor('openai/b').bulkhead.maxQueuePerProject, 50, 'never above maxQueue');
  });

  it('rejects bad values, naming the field', () => {
    rejects({ timeoutMs: 0 }, 'resilience.timeoutMs');
    rejects({ timeoutMs: '5s' }, 'resilience.timeoutMs');
    rejects({ retry: { maxAttempts: 0 } }, 'resilience.retry.maxAttempts');
    rejects({ retry: { maxAttempts: 1.5 } }, 'resilience.retry.maxAttempts');
    rejects({ retry: { initialDelayMs: -1 } }, 'resilience.retry.initialDelayMs');
    rejects({ retry: { initialDelayMs: 500, maxDelayMs: 100 } }, 'resilience.retry.maxDelayMs');
    rejects({ retry: { maxRetryAfterMs: -5 } }, 'resilience.retry.maxRetryAfterMs');
    rejects({ breaker: { strategy: 'rolling' } }, 'resilience.breaker.strategy');
    rejects({ breaker: { threshold: 0 } }, 'resilience.breaker.threshold');
    rejects({ breaker: { failureRatio: 1 } }, 'resilience.breaker.failureRatio');
    rejects({ breaker: { failureRatio: 0 } }, 'resilience.breaker.failureRatio');
    rejects({ breaker: { minimumCalls: 0 } }, 'resilience.breaker.minimumCalls');
    rejects({ breaker: { windowMs: 10 } }, 'resilience.breaker.windowMs');
    rejects({ breaker: { halfOpenAfterMs: 0 } }, 'resilience.breaker.halfOpenAfterMs');
    rejects({ bulkhead: { maxConcurrent: 0 } }, 'resilience.bulkhead.maxConcurrent');
    rejects({ bulkhead: { maxQueue: -1 } }, 'resilience.bulkhead.maxQueue');
    rejects({ bulkhead: { maxQueuePerProject: -1 } }, 'resilience.bulkhead.maxQueuePerProject');
    rejects({ bulkhead: { maxQueuePerProject: 300 } }, 'resilience.bulkhead.maxQueuePerProject');
    rejects({ bulkhead: { maxQueue: 10, maxQueuePerProject: 11 } }, 'resilience.bulkhead.maxQueuePerProject');
    rejects({ rateLimit: { requestsPerMinute: 0 } }, 'resilience.rateLimit.requestsPerMinute');
    rejects({ rateLimit: { tokensPerMinute: 1.5 } }, 'resilience.rateLimit.tokensPerMinute');
    rejects({ retry: 3 }, 'resilience.retry');
  });

  it('rejects unknown keys, at every level', () => {
    rejects({ retries: 3 }, 'resilience.retries');
    rejects({ retry: { attempts: 3 } }, 'resilience.retry.attempts');
    rejects(
      { models: { 'openai/gpt-4o': { breaker: { ratio: 0.2 } } } },
      'resilience.models["openai/gpt-4o"].breaker.ratio',
    );
  });

  it('names the model when an override is bad, and rejects refs that are not provider/model-id', () => {
    rejects(
      { models: { 'openai/gpt-4o': { retry: { maxAttempts: -1 } } } },
      'resilience.models["openai/gpt-4o"].retry.maxAttempts',
    );
    rejects({ models: { 'gpt-4o': {} } }, 'resilience.models["gpt-4o"]');
    rejects({ models: { 'openai/gpt-4o': 'fast' } }, 'resilience.models["openai/gpt-4o"]');
    rejects({ models: [] }, 'resilience.models');
  });
});
