/** The health monitor's options: documented defaults, and errors that name the field. */
import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { defaultMemoryLimit, resolveHealthOptions } from '../../src/pool/health-options.ts';
import { resolveInstancePoolOptions } from '../../src/pool/pool-options.ts';

describe('health options', () => {
  it('has documented defaults', () => {
    assert.deepEqual(resolveHealthOptions(), {
      enabled: true,
      intervalMs: 10_000,
      activationTimeoutMs: 30_000,
      stuckAfterMs: 300_000,
      memoryLimitBytes: defaultMemoryLimit(),
      eventLoopDelayMs: { degraded: 200, overloaded: 1000 },
      eventLoopUtilization: { degraded: 0.9, overloaded: 0 },
      heapRatio: { degraded: 0.85, overloaded: 0.95 },
      rssRatio: { degraded: 0.85, overloaded: 0.95 },
      cpuRatio: { degraded: 0.9, overloaded: 0 },
      shrinkFraction: 0.25,
      retryAfterSeconds: 10,
    });
    assert.deepEqual(resolveInstancePoolOptions().health, resolveHealthOptions());
  });

  it("takes the container's memory limit when there is one, else the machine's", () => {
    const limit = defaultMemoryLimit();
    assert.ok(limit > 0 && limit <= totalmem());
    const constrained = process.constrainedMemory();
    if (constrained > 0 && constrained < totalmem()) assert.equal(limit, constrained);
    else assert.equal(limit, totalmem());
  });

  it('derives Retry-After from the interval unless given', () => {
    assert.equal(resolveHealthOptions({ intervalMs: 2500 }).retryAfterSeconds, 3);
    assert.equal(resolveHealthOptions({ intervalMs: 2500, retryAfterSeconds: 30 }).retryAfterSeconds, 30);
  });

  it('keeps a threshold given alone and the default of the other level', () => {
    assert.deepEqual(resolveHealthOptions({ eventLoopDelayMs: { overloaded: 2000 } }).eventLoopDelayMs, {
      degraded: 200,
      overloaded: 2000,
    });
  });

  it('names the field of a bad value', () => {
    const cases: [unknown, string | RegExp][] = [
      [{ intervalMs: 10 }, 'pool.health.intervalMs must be an integer ≥ 100, got 10'],
      [{ activationTimeoutMs: -1 }, 'pool.health.activationTimeoutMs must be an integer ≥ 0, got -1'],
      [{ enabled: 'yes' }, 'pool.health.enabled must be a boolean, got "yes"'],
      [
        { heapRatio: { degraded: 1.5 } },
        'pool.health.heapRatio.degraded must be a number from 0 to 1, got 1.5',
      ],
      [
        { rssRatio: { degraded: 0.9, overloaded: 0.5 } },
        'pool.health.rssRatio.overloaded must be at least pool.health.rssRatio.degraded (0.9), got 0.5',
      ],
      [
        { cpuRatio: { high: 1 } },
        'pool.health.cpuRatio.high is not a known field (known: degraded, overloaded)',
      ],
      [{ intervalMS: 1000 }, /^pool\.health\.intervalMS is not a known field/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => resolveHealthOptions(input as never),
        (e) =>
          isAgentPoolError(e, 'VALIDATION_FAILED') &&
          (typeof message === 'string' ? e.message === message : message.test(e.message)),
        JSON.stringify(input),
      );
    }
  });
});
