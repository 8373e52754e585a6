import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import {
  CircuitState,
  ConsecutiveBreaker,
  type IBreaker,
  SamplingBreaker,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import fc from 'fast-check';
import { type Admission, Circuit } from '../../src/models/circuit.ts';
import { type Clock, ManualClock } from '../../src/core/clock.ts';

/** Lets every settled promise run its callbacks. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A failure that says the model is sick, and one that does not (a 400, a cancelled call). */
const sick = (n: number) => ({ sick: true, n });
const healthy = (n: number) => ({ sick: false, n });
const counts = (err: unknown): boolean => (err as { sick?: boolean }).sick === true;
/** Date.now, which node:test's mock timers move, as an injected clock. */
const dateClock: Clock = { now: () => Date.now(), setTimeout: () => ({ cancel: () => undefined }) };

type Op =
  | { kind: 'call' }
  | { kind: 'settle'; which: number; outcome: 'success' | 'sick' | 'healthy' }
  | { kind: 'wait'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'call' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      which: fc.nat(),
      outcome: fc.constantFrom('success' as const, 'sick' as const, 'healthy' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 700 }) }),
  },
);

/** The same kind of strategy twice: one for cockatiel's policy, one for ours. */
const strategies: fc.Arbitrary<() => IBreaker> = fc.oneof(
  fc.integer({ min: 1, max: 4 }).map((threshold) => () => new ConsecutiveBreaker(threshold)),
  fc
    .record({ threshold: fc.constantFrom(0.2, 0.5, 0.8), minimumRps: fc.constantFrom(1, 3, 10) })
    .map((o) => () => new SamplingBreaker({ ...o, duration: 2000 })),
);

/**
 * Plays `ops` on cockatiel's CircuitBreakerPolicy (as the guard used it) and on a Circuit, each
 * with its own `strategy()`, asserting after each step that both admitted the same calls, are in
 * the same state, changed state alike and remember the same last failure.
 */
async function replay(strategy: () => IBreaker, ops: readonly Op[]): Promise<void> {
  mock.timers.setTime(1_000_000);
  const halfOpenAfter = 500;
  const policy = circuitBreaker(handleWhen(counts), { halfOpenAfter, breaker: strategy() });
  const theirs: CircuitState[] = [];
  policy.onStateChange((s) => theirs.push(s));
  const ours: CircuitState[] = [];
  const circuit = new Circuit({
    strategy: strategy(),
    halfOpenAfterMs: halfOpenAfter,
    clock: dateClock,
    counts,
    onChange: (s) => ours.push(s),
  });
  const inFlight: { settle: PromiseWithResolvers<void>; admission: Admission }[] = [];
  let n = 0;
  for (const o of ops) {
    if (o.kind === 'call') {
      // The guard refuses a call while half-open before asking the policy (its trial is in flight).
      let admitted = false;
      const settle = Promise.withResolvers<void>();
      if (policy.state !== CircuitState.HalfOpen) {
        policy
          .execute(() => {
            admitted = true;
            return settle.promise;
          })
          .catch(() => undefined);
      }
      const admission = circuit.admit();
      assert.equal(admission !== undefined, admitted, 'admitted alike');
      if (admission !== undefined) inFlight.push({ settle, admission });
    } else if (o.kind === 'settle') {
      if (inFlight.length === 0) continue;
      const [call] = inFlight.splice(o.which % inFlight.length, 1);
      if (call === undefined) continue;
      const err = o.outcome === 'sick' ? sick(n++) : healthy(n++);
      if (o.outcome === 'success') {
        call.settle.resolve();
        circuit.succeeded(call.admission);
      } else {
        call.settle.reject(err);
        circuit.failed(call.admission, err);
      }
      await flush();
    } else {
      mock.timers.tick(o.ms);
    }
    assert.equal(circuit.state, policy.state, 'same state');
    assert.deepEqual(ours, theirs, 'same changes');
    const last = policy.lastFailure;
    assert.equal(circuit.lastFailure, last !== undefined && 'error' in last ? last.error : undefined);
  }
}

describe('circuit', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it("admits, refuses and changes state exactly as cockatiel's CircuitBreakerPolicy, for any sequence of calls, outcomes and waits", async () => {
    await fc.assert(fc.asyncProperty(strategies, fc.array(op, { minLength: 20, maxLength: 100 }), replay), {
      numRuns: 500,
    });
  });

  it('ignores the outcome of a trial that a late failure of a call admitted while closed made stale, as cockatiel does', async () => {
    const call = { kind: 'call' } as const;
    const fail = { kind: 'settle', which: 0, outcome: 'sick' } as const;
    const cooldown = { kind: 'wait', ms: 600 } as const;
    await replay(
      () => new ConsecutiveBreaker(1),
      [
        call, // a, admitted while closed
        call, // b, likewise
        fail, // a: opens
        cooldown,
        call, // the first trial
        fail, // b, late: opens again
        cooldown,
        call, // the second trial
        fail, // the first trial: stale, changes nothing
        { kind: 'settle', which: 0, outcome: 'success' }, // the second trial: closes
      ],
    );
  });

  it('opens on the injected clock: refuses until halfOpenAfterMs passed, then lets one trial through', () => {
    const clock = new ManualClock();
    const changes: CircuitState[] = [];
    const circuit = new Circuit({
      strategy: new ConsecutiveBreaker(1),
      halfOpenAfterMs: 10_000,
      clock,
      counts,
      onChange: (s) => changes.push(s),
    });
    circuit.failed(circuit.admit() as Admission, sick(1));
    assert.equal(circuit.state, CircuitState.Open);
    assert.equal(circuit.waitMs, 10_000);
    clock.advance(9_999);
    assert.equal(circuit.admit(), undefined);
    assert.equal(circuit.waitMs, 1);
    clock.advance(1);
    const trial = circuit.admit();
    assert.equal(trial?.value, CircuitState.HalfOpen);
    assert.equal(circuit.admit(), undefined, 'one trial only');
    assert.equal(circuit.waitMs, 0);
    circuit.succeeded(trial as Admission);
    assert.deepEqual(changes, [CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed]);
  });
});
