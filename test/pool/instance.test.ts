import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isAgentPoolError } from '../../src/core/errors.ts';
import {
  AgentInstance,
  canTransition,
  INSTANCE_STATES,
  type InstanceState,
  TRANSITIONS,
} from '../../src/pool/instance.ts';
import { parseAgentSpec } from '../../src/registry/definition.ts';
import type { Agent } from '../../src/registry/registry.ts';

const agent: Agent = {
  id: 'agt_0000000000000000000000000x',
  project: 'p',
  name: 'x',
  activeVersion: 1,
  latestVersion: 1,
  spec: parseAgentSpec({ name: 'x', instructions: 'hello' }),
  createdAt: 0,
  updatedAt: 0,
  lastUsedAt: 0,
  expiresAt: null,
  rollout: null,
};

function make() {
  const seen: [InstanceState, InstanceState][] = [];
  const instance = new AgentInstance('ins_1', agent, 'p/x', 0, (_i, from, to) => seen.push([from, to]));
  return { instance, seen };
}

type Op = { kind: 'to'; state: InstanceState } | { kind: 'lease' } | { kind: 'unlease' };

/** Applies one operation; returns whether the instance accepted it. */
function apply(instance: AgentInstance, op: Op): boolean {
  try {
    if (op.kind === 'lease') {
      if (instance.state !== 'ready' && instance.state !== 'busy') return false; // the pool never leases otherwise
      instance.lease(1);
    } else if (op.kind === 'unlease') instance.unlease(1);
    else if (op.state === 'error') instance.fail(new Error('boom'), 1);
    else if (op.state === 'terminated') instance.terminate(1, 'deactivated');
    else if (op.state === 'busy') return false;
    else instance.transition(op.state, 1, 'activate');
    return true;
  } catch (err) {
    assert.ok(isAgentPoolError(err, 'INVALID_STATE_TRANSITION'), `unexpected error ${String(err)}`);
    return false;
  }
}

describe('instance lifecycle', () => {
  it('follows the documented happy path and reports each transition', () => {
    const { instance, seen } = make();
    instance.transition('initializing', 1, 'activate');
    instance.transition('ready', 2, 'activated');
    instance.lease(3);
    instance.lease(3);
    assert.equal(instance.leases, 2);
    assert.equal(instance.unlease(4), false);
    assert.equal(instance.unlease(4), true);
    instance.transition('paused', 5, 'pause');
    instance.transition('ready', 6, 'resume');
    instance.terminate(7, 'idle');
    assert.deepEqual(seen, [
      ['created', 'initializing'],
      ['initializing', 'ready'],
      ['ready', 'busy'],
      ['busy', 'ready'],
      ['ready', 'paused'],
      ['paused', 'ready'],
      ['ready', 'terminated'],
    ]);
  });

  it('throws INVALID_STATE_TRANSITION on an illegal move and stays put', () => {
    const { instance, seen } = make();
    assert.throws(
      () => instance.transition('ready', 1, 'activated'),
      (e) => isAgentPoolError(e, 'INVALID_STATE_TRANSITION'),
    );
    assert.equal(instance.state, 'created');
    assert.equal(seen.length, 0);
    instance.terminate(1, 'closed');
    assert.throws(() => instance.transition('initializing', 1, 'restart'));
  });

  it('keeps the error cause in the error state, and can restart from it', () => {
    const { instance } = make();
    instance.transition('initializing', 1, 'activate');
    instance.fail(new Error('model missing'), 2);
    assert.equal(instance.status.state === 'error' && instance.status.error.message, 'model missing');
    instance.transition('initializing', 3, 'restart');
    assert.equal(instance.state, 'initializing');
  });

  it('allows exactly the lifecycle of DESIGN.md (the table the property below checks against)', () => {
    // created → initializing → ready ⇄ busy, ready → paused → ready, * → error → initializing
    // (restart) or terminated; busy leaves only by release (ready) or error, terminated is final.
    assert.deepEqual(TRANSITIONS, {
      created: ['initializing', 'error', 'terminated'],
      initializing: ['ready', 'error', 'terminated'],
      ready: ['busy', 'paused', 'error', 'terminated'],
      busy: ['ready', 'error'],
      paused: ['ready', 'error', 'terminated'],
      error: ['initializing', 'terminated'],
      terminated: [],
    });
  });

  it('reaches no illegal transition under any sequence of operations (property)', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constantFrom(...INSTANCE_STATES).map((state): Op => ({ kind: 'to', state })),
      fc.constant<Op>({ kind: 'lease' }),
      fc.constant<Op>({ kind: 'unlease' }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const { instance, seen } = make();
        for (const o of ops) {
          const before = instance.state;
          const leasesBefore = instance.leases;
          const accepted = apply(instance, o);
          if (!accepted) assert.equal(instance.state, before, 'a refused operation changes nothing');
          if (o.kind === 'to' && o.state !== 'busy' && accepted !== canTransition(before, o.state)) {
            assert.fail(`${before} -> ${o.state}: accepted=${accepted}`);
          }
          if (o.kind === 'unlease' && before === 'busy')
            assert.ok(accepted && instance.leases === leasesBefore - 1);
        }
        for (const [from, to] of seen)
          assert.ok(TRANSITIONS[from].includes(to), `${from} -> ${to} is illegal`);
      }),
      { numRuns: 500 },
    );
  });
});
