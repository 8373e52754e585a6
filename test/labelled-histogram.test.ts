import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { LabelledHistogram } from '../src/labelled-histogram.ts';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const config = {
  name: 'x_seconds',
  help: 'Help with "quotes", a \\ and a\nnewline.',
  labelNames: ['model', 'outcome'],
  buckets: BUCKETS,
} as const;

/** The same family twice: prom-client's Histogram and ours, each in a registry of its own. */
function pair() {
  const reference = new Registry();
  const ours = new Registry();
  const promHistogram = new Histogram({
    ...config,
    labelNames: [...config.labelNames],
    registers: [reference],
  });
  const labelled = new LabelledHistogram(config);
  ours.registerMetric(labelled as never);
  return { reference, ours, promHistogram, labelled };
}

const labelValue = fc.oneof(
  fc.constantFrom('demo/x', 'a', 'b', '', '1:a', '1', 'a"b', 'back\\slash', 'new\nline', 'é 𝄞'),
  fc.string({ maxLength: 6 }),
);
const observation = fc.record({
  model: labelValue,
  outcome: fc.constantFrom('ok', 'error', ':ok'),
  value: fc.oneof(
    fc.constantFrom(0, -0, ...BUCKETS, 300.0001, 1e9, Number.MIN_VALUE),
    fc.double({ min: -1, max: 400, noNaN: true }),
  ),
});

describe('labelled histogram', () => {
  it("exposes what prom-client's Histogram exposes for the same observations, byte for byte", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
        const { reference, ours, promHistogram, labelled } = pair();
        for (const { model, outcome, value } of observations) {
          promHistogram.observe({ model, outcome }, value);
          labelled.observe({ model, outcome }, value);
        }
        assert.equal(await ours.metrics(), await reference.metrics());
      }),
    );
  });

  it('keeps label sets apart that a joined key would mix', async () => {
    const { ours } = pair();
    const h = new LabelledHistogram({ ...config, name: 'y_seconds' });
    ours.registerMetric(h as never);
    h.observe({ model: 'a:b', outcome: 'c' }, 1);
    h.observe({ model: 'a', outcome: 'b:c' }, 1);
    h.observe({ model: '3:a:b', outcome: 'c' }, 1);
    const counts = (await ours.metrics()).split('\n').filter((l) => l.startsWith('y_seconds_count'));
    assert.deepEqual(counts, [
      'y_seconds_count{model="a:b",outcome="c"} 1',
      'y_seconds_count{model="a",outcome="b:c"} 1',
      'y_seconds_count{model="3:a:b",outcome="c"} 1',
    ]);
  });

  it('refuses to be made without labels (prom-client exposes that one series before any observation)', () => {
    assert.throws(() => new LabelledHistogram({ ...config, labelNames: [] }), TypeError);
  });

  it('refuses a value that is not a finite number as prom-client does, counting nothing', async () => {
    const { reference, ours, promHistogram, labelled } = pair();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const labels = { model: 'm', outcome: 'ok' };
      const expected = (() => {
        try {
          promHistogram.observe(labels, bad);
        } catch (err) {
          return err;
        }
        assert.fail('prom-client accepted it');
      })();
      assert.throws(() => labelled.observe(labels, bad), expected as Error);
    }
    assert.equal(await ours.metrics(), await reference.metrics());
  });
});
