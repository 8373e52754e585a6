import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import {
  currentPercent,
  evaluateFlag,
  FeatureFlags,
  FLAG_STRATEGIES,
  flagBucket,
  type FlagDefinition,
  type FlagStrategy,
  parseFlagStrategy,
  sameFlagStrategy,
} from '../../src/governance/flags.ts';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

/** Asserts a VALIDATION_FAILED naming `field`, with a message matching `message`. */
const invalid = (field: string, message?: RegExp) => (err: unknown) => {
  assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), `expected VALIDATION_FAILED, got ${String(err)}`);
  assert.equal(err.details.field, field);
  if (message !== undefined) assert.match(err.message, message);
  return true;
};

const on = (flag: FlagStrategy, key: string, now = T0, project = 'p1') =>
  evaluateFlag(flag, { project, key, now, startedAt: T0 });

/** The share of `n` keys (`user-0` …) the flag lets through, in percent. */
function share(flag: FlagStrategy, n: number, now = T0, prefix = 'user-'): number {
  let hits = 0;
  for (let i = 0; i < n; i++) if (on(flag, `${prefix}${i}`, now)) hits++;
  return (hits / n) * 100;
}

describe('flag strategies: parsing', () => {
  it('lists the six strategies', () => {
    assert.deepEqual(FLAG_STRATEGIES, ['all', 'none', 'percentage', 'allowlist', 'denylist', 'gradual']);
  });

  it('accepts each strategy and returns a copy holding only its fields', () => {
    const inputs: FlagStrategy[] = [
      { strategy: 'all' },
      { strategy: 'none' },
      { strategy: 'percentage', percent: 12.5 },
      { strategy: 'allowlist', projects: ['acme', 'beta'] },
      { strategy: 'denylist', projects: [] },
      { strategy: 'gradual', startPercent: 1, endPercent: 100, durationMs: HOUR },
    ];
    for (const input of inputs) {
      const parsed = parseFlagStrategy(input, 'rollout');
      assert.deepEqual(parsed, input);
      assert.notEqual(parsed, input);
    }
    const list = ['acme'];
    const parsed = parseFlagStrategy({ strategy: 'allowlist', projects: list }, 'rollout');
    list.push('other');
    assert.deepEqual(parsed, { strategy: 'allowlist', projects: ['acme'] });
  });

  it('rejects bad input with VALIDATION_FAILED naming the field', () => {
    const cases: [unknown, string, RegExp?][] = [
      ['10%', 'rollout', /must be an object/],
      [null, 'rollout'],
      [{}, 'rollout.strategy', /must be one of "all", "none"/],
      [{ strategy: 'canary' }, 'rollout.strategy', /got "canary"/],
      [{ strategy: 'all', percent: 5 }, 'rollout.percent', /not a known field/],
      [{ strategy: 'percentage', percentage: 5 }, 'rollout.percentage', /not a known field/],
      [{ strategy: 'percentage' }, 'rollout.percent', /is required/],
      [{ strategy: 'percentage', percent: 120 }, 'rollout.percent', /from 0 to 100, got 120/],
      [{ strategy: 'percentage', percent: -1 }, 'rollout.percent'],
      [{ strategy: 'percentage', percent: '10' }, 'rollout.percent'],
      [{ strategy: 'percentage', percent: Number.NaN }, 'rollout.percent'],
      [{ strategy: 'allowlist' }, 'rollout.projects', /must be an array/],
      [{ strategy: 'allowlist', projects: 'acme' }, 'rollout.projects'],
      [{ strategy: 'denylist', projects: ['acme', 7] }, 'rollout.projects[1]'],
      [{ strategy: 'denylist', projects: ['acme', ''] }, 'rollout.projects[1]'],
      [{ strategy: 'allowlist', projects: ['acme', 'acme'] }, 'rollout.projects[1]', /repeats "acme"/],
      [
        { strategy: 'allowlist', projects: Array.from({ length: 1001 }, (_, i) => `p${i}`) },
        'rollout.projects',
      ],
      [{ strategy: 'gradual', endPercent: 50, durationMs: 1000 }, 'rollout.startPercent', /is required/],
      [
        { strategy: 'gradual', startPercent: 50, endPercent: 10, durationMs: 1000 },
        'rollout.endPercent',
        /only rises/,
      ],
      [{ strategy: 'gradual', startPercent: 0, endPercent: 10 }, 'rollout.durationMs', /is required/],
      [{ strategy: 'gradual', startPercent: 0, endPercent: 10, durationMs: 0 }, 'rollout.durationMs'],
      [{ strategy: 'gradual', startPercent: 0, endPercent: 10, durationMs: 1.5 }, 'rollout.durationMs'],
    ];
    for (const [input, field, message] of cases) {
      assert.throws(
        () => parseFlagStrategy(input, 'rollout'),
        invalid(field, message),
        JSON.stringify(input),
      );
    }
  });

  it('tells equal strategies from different ones', () => {
    const ten = { strategy: 'percentage', percent: 10 } as const;
    assert.equal(sameFlagStrategy(ten, { strategy: 'percentage', percent: 10 }), true);
    assert.equal(sameFlagStrategy(ten, { strategy: 'percentage', percent: 20 }), false);
    assert.equal(sameFlagStrategy({ strategy: 'all' }, { strategy: 'none' }), false);
    assert.equal(
      sameFlagStrategy({ strategy: 'allowlist', projects: ['a'] }, { strategy: 'denylist', projects: ['a'] }),
      false,
    );
  });
});

describe('flag strategies: evaluation', () => {
  it('all, none, allowlist and denylist decide on the project alone', () => {
    for (const key of ['a', 'b', 'c']) {
      assert.equal(on({ strategy: 'all' }, key), true);
      assert.equal(on({ strategy: 'none' }, key), false);
      assert.equal(on({ strategy: 'allowlist', projects: ['p1', 'p2'] }, key, T0, 'p2'), true);
      assert.equal(on({ strategy: 'allowlist', projects: ['p1', 'p2'] }, key, T0, 'p3'), false);
      assert.equal(on({ strategy: 'denylist', projects: ['p1'] }, key, T0, 'p1'), false);
      assert.equal(on({ strategy: 'denylist', projects: ['p1'] }, key, T0, 'p3'), true);
    }
  });

  it('hashes every key into [0, 100), stably', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (key) => {
        const bucket = flagBucket(key);
        assert.ok(bucket >= 0 && bucket < 100, `bucket ${bucket}`);
        assert.equal(flagBucket(key), bucket);
      }),
    );
    // Pinned values: changing the hash would move users in and out of every running canary.
    assert.deepEqual(
      ['', 'a', 'user-1', 'thr_01jd3k'].map((k) => Math.round(flagBucket(k) * 1e6) / 1e6),
      [66.892219, 10.352622, 46.703404, 29.640959],
    );
  });

  it('gives the same key the same answer, and only adds keys as the percentage rises', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (key, a, b) => {
          const [low, high] = a <= b ? [a, b] : [b, a];
          const atLow = on({ strategy: 'percentage', percent: low }, key);
          assert.equal(on({ strategy: 'percentage', percent: low }, key), atLow);
          if (atLow) assert.equal(on({ strategy: 'percentage', percent: high }, key), true);
        },
      ),
    );
  });

  it('lets no key through at 0 % and every key at 100 %', () => {
    fc.assert(
      fc.property(fc.string(), (key) => {
        assert.equal(on({ strategy: 'percentage', percent: 0 }, key), false);
        assert.equal(on({ strategy: 'percentage', percent: 100 }, key), true);
      }),
    );
  });

  it('lets through the configured share of 10,000 keys, within 1.5 points', () => {
    for (const percent of [1, 10, 33.3, 50, 90]) {
      const flag = { strategy: 'percentage', percent } as const;
      for (const prefix of ['user-', 'thr_01jd3k', '']) {
        const got = share(flag, 10_000, T0, prefix);
        assert.ok(Math.abs(got - percent) <= 1.5, `${percent} % of "${prefix}…" keys gave ${got} %`);
      }
    }
  });

  it('keeps the share for random keys too (property over key sets)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.uuid(), { minLength: 10_000, maxLength: 10_000 }), (keys) => {
        const flag = { strategy: 'percentage', percent: 10 } as const;
        const hits = keys.filter((key) => on(flag, key)).length;
        assert.ok(Math.abs(hits / 100 - 10) <= 1.5, `${hits / 100} %`);
      }),
      { numRuns: 5 },
    );
  });

  it('gradual rises linearly from startPercent to endPercent over durationMs, then stays', () => {
    const flag = { strategy: 'gradual', startPercent: 10, endPercent: 50, durationMs: 4 * HOUR } as const;
    assert.equal(currentPercent(flag, T0 - HOUR, T0), 10);
    assert.equal(currentPercent(flag, T0, T0), 10);
    assert.equal(currentPercent(flag, T0 + HOUR, T0), 20);
    assert.equal(currentPercent(flag, T0 + 2 * HOUR, T0), 30);
    assert.equal(currentPercent(flag, T0 + 4 * HOUR, T0), 50);
    assert.equal(currentPercent(flag, T0 + 40 * HOUR, T0), 50);
    for (const [at, expected] of [
      [T0, 10],
      [T0 + 2 * HOUR, 30],
      [T0 + 9 * HOUR, 50],
    ] as const) {
      const got = share(flag, 10_000, at);
      assert.ok(Math.abs(got - expected) <= 1.5, `at +${(at - T0) / HOUR} h: ${got} %`);
    }
  });

  it('gradual never drops a key it has let through', () => {
    const flag = { strategy: 'gradual', startPercent: 0, endPercent: 100, durationMs: HOUR } as const;
    fc.assert(
      fc.property(fc.string(), fc.nat(2 * HOUR), fc.nat(2 * HOUR), (key, a, b) => {
        const [early, late] = a <= b ? [a, b] : [b, a];
        if (on(flag, key, T0 + early)) assert.equal(on(flag, key, T0 + late), true);
      }),
    );
  });

  it('reports the current share: fixed for all, none and percentage; null for project lists', () => {
    assert.equal(currentPercent({ strategy: 'all' }, T0, T0), 100);
    assert.equal(currentPercent({ strategy: 'none' }, T0, T0), 0);
    assert.equal(currentPercent({ strategy: 'percentage', percent: 7.5 }, T0, T0), 7.5);
    assert.equal(currentPercent({ strategy: 'allowlist', projects: ['p1'] }, T0, T0), null);
    assert.equal(currentPercent({ strategy: 'denylist', projects: [] }, T0, T0), null);
  });
});

describe('FeatureFlags', () => {
  it('evaluates named flags on its clock, a gradual one from its startedAt', () => {
    const clock = new ManualClock(T0);
    const flags = new FeatureFlags({
      clock,
      flags: {
        everyone: { strategy: 'all' },
        'new-ui': { strategy: 'allowlist', projects: ['acme'] },
        ramp: {
          strategy: 'gradual',
          startPercent: 0,
          endPercent: 100,
          durationMs: HOUR,
          startedAt: T0 - HOUR,
        },
        later: { strategy: 'gradual', startPercent: 0, endPercent: 100, durationMs: HOUR },
      },
    });
    assert.equal(flags.isEnabled('everyone', { project: 'x', key: 'k' }), true);
    assert.equal(flags.isEnabled('new-ui', { project: 'acme', key: 'k' }), true);
    assert.equal(flags.isEnabled('new-ui', { project: 'other', key: 'k' }), false);
    assert.equal(flags.isEnabled('ramp', { project: 'x', key: 'k' }), true, 'ramp finished an hour ago');
    const later = () =>
      Array.from({ length: 1000 }, (_, i) => flags.isEnabled('later', { project: 'x', key: `${i}` }));
    assert.equal(later().filter(Boolean).length, 0, 'ramp starts at construction');
    clock.advance(HOUR / 2);
    const half = later().filter(Boolean).length;
    assert.ok(half > 400 && half < 600, `${half} of 1000`);
    assert.deepEqual(
      flags.list().map((f) => [f.name, f.percent, f.startedAt]),
      [
        ['everyone', 100, T0],
        ['later', 50, T0],
        ['new-ui', null, T0],
        ['ramp', 100, T0 - HOUR],
      ],
    );
    assert.equal(flags.has('ramp'), true);
    assert.equal(flags.has('rmap'), false);
  });

  it('throws NOT_FOUND for an unknown flag name instead of answering false', () => {
    const flags = new FeatureFlags({ flags: { beta: { strategy: 'all' } } });
    assert.throws(
      () => flags.isEnabled('btea', { project: 'x', key: 'k' }),
      (err: unknown) => isAgentPoolError(err, 'NOT_FOUND') && err.details.flag === 'btea',
    );
    assert.deepEqual(new FeatureFlags().list(), []);
  });

  it('samples independent keys for two flags at the same percentage', () => {
    const flags = new FeatureFlags({
      flags: { a: { strategy: 'percentage', percent: 50 }, b: { strategy: 'percentage', percent: 50 } },
    });
    let both = 0;
    for (let i = 0; i < 10_000; i++) {
      const ctx = { project: 'x', key: `user-${i}` };
      if (flags.isEnabled('a', ctx) && flags.isEnabled('b', ctx)) both++;
    }
    assert.ok(Math.abs(both / 100 - 25) <= 2, `${both / 100} % in both`);
  });

  it('validates every flag at construction, naming the field', () => {
    const build = (flags: Record<string, unknown>) => () =>
      new FeatureFlags({ flags: flags as Record<string, FlagDefinition> });
    assert.throws(build({ beta: { strategy: 'percentage', percent: 150 } }), invalid('flags.beta.percent'));
    assert.throws(build({ beta: { strategy: 'all', extra: 1 } }), invalid('flags.beta.extra'));
    assert.throws(build({ beta: { strategy: 'all', startedAt: -5 } }), invalid('flags.beta.startedAt'));
    assert.throws(build({ beta: 'on' }), invalid('flags.beta'));
    assert.throws(build({ 'Bad Name': { strategy: 'all' } }), invalid('flags.Bad Name', /name must be/));
  });
});
