import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { DEFAULT_MODEL, parseAgentSpec, patchAgentSpec, sameSpec } from '../../src/registry/definition.ts';

function rejects(input: unknown, field: string): void {
  assert.throws(
    () => parseAgentSpec(input),
    (err) =>
      isAgentPoolError(err, 'VALIDATION_FAILED') &&
      err.details.field === field &&
      err.message.startsWith(field),
  );
}

describe('agent definition', () => {
  it('applies defaults to a minimal spec', () => {
    assert.deepEqual(parseAgentSpec({ name: 'support' }), {
      name: 'support',
      instructions: '',
      model: DEFAULT_MODEL,
      maxSteps: 10,
      tools: [],
      tier: 'auto',
      labels: {},
      metadata: {},
    });
  });

  it('keeps every field of a full spec', () => {
    const spec = parseAgentSpec({
      name: 'billing-2',
      instructions: 'Be brief.',
      model: 'openai/gpt-4o-mini',
      temperature: 0.2,
      maxTokens: 512,
      maxSteps: 4,
      tools: ['builtin:time', 'module:./tools.ts#lookup'],
      tier: 'hot',
      labels: { team: 'billing', 'app.io/env': 'prod' },
      metadata: { owner: { email: 'a@b.c' } },
      ttlSeconds: 3600,
      runTimeoutMs: 120_000,
    });
    assert.equal(spec.runTimeoutMs, 120_000);
    assert.equal(spec.temperature, 0.2);
    assert.equal(spec.maxTokens, 512);
    assert.equal(spec.ttlSeconds, 3600);
    assert.deepEqual(spec.labels, { 'app.io/env': 'prod', team: 'billing' });
  });

  it('names the field of every bad value', () => {
    rejects({ name: 'My Agent' }, 'name');
    rejects({ name: '-x' }, 'name');
    rejects({ name: 'a'.repeat(65) }, 'name');
    rejects({ name: 'ok', model: 'gpt-4o' }, 'model');
    rejects({ name: 'ok', temperature: 3 }, 'temperature');
    rejects({ name: 'ok', maxTokens: 0 }, 'maxTokens');
    rejects({ name: 'ok', maxSteps: 1.5 }, 'maxSteps');
    rejects({ name: 'ok', tools: ['a', 'a'] }, 'tools[1]');
    rejects({ name: 'ok', tools: [''] }, 'tools[0]');
    rejects({ name: 'ok', tier: 'lukewarm' }, 'tier');
    rejects({ name: 'ok', labels: { Team: 'x' } }, 'labels.Team');
    rejects({ name: 'ok', labels: { team: 1 } }, 'labels.team');
    rejects({ name: 'ok', metadata: [] }, 'metadata');
    rejects({ name: 'ok', metadata: { big: 'x'.repeat(20_000) } }, 'metadata');
    rejects({ name: 'ok', ttlSeconds: -1 }, 'ttlSeconds');
    rejects({ name: 'ok', instructions: 7 }, 'instructions');
    rejects({ name: 'ok', runTimeoutMs: 999 }, 'runTimeoutMs');
    rejects({ name: 'ok', runTimeoutMs: 86_400_001 }, 'runTimeoutMs');
    rejects({ name: 'ok', runTimeoutMs: '5s' }, 'runTimeoutMs');
  });

  it('rejects unknown fields by name', () => {
    rejects({ name: 'ok', temprature: 1 }, 'temprature');
  });

  it('treats specs that differ only in key order as the same', () => {
    const a = parseAgentSpec({
      name: 'x',
      labels: { a: '1', b: '2' },
      metadata: { p: 1, q: { r: 2, s: 3 } },
    });
    const b = parseAgentSpec({
      metadata: { q: { s: 3, r: 2 }, p: 1 },
      labels: { b: '2', a: '1' },
      name: 'x',
    });
    assert.ok(sameSpec(a, b));
    assert.ok(!sameSpec(a, parseAgentSpec({ name: 'x' })));
  });

  it('patches fields, resets null ones to defaults, and refuses a rename', () => {
    const base = parseAgentSpec({ name: 'x', temperature: 0.5, instructions: 'hi' });
    const patched = patchAgentSpec(base, { instructions: 'hello', temperature: null });
    assert.equal(patched.instructions, 'hello');
    assert.equal(patched.temperature, undefined);
    assert.throws(
      () => patchAgentSpec(base, { name: 'y' }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED'),
    );
    assert.throws(
      () => patchAgentSpec(base, { maxSteps: 0 }),
      (e) => isAgentPoolError(e) && e.details.field === 'maxSteps',
    );
  });
});
