/**
 * The caps on user-supplied data, as a library user meets them: every facade that takes metadata
 * (agents, threads, runs, projects) refuses too much or too deep with VALIDATION_FAILED naming the
 * field, never with a stack overflow, and keeps a copy rather than the caller's object.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { checkJsonShape, INPUT_LIMITS, parseMetadata, parseRunInput } from '../../src/core/input-limits.ts';

/** `{ a: { a: … } }`, `levels` objects deep. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

const refusedFor = (field: string, pattern?: RegExp) => (err: unknown) =>
  isAgentPoolError(err, 'VALIDATION_FAILED') &&
  err.details['field'] === field &&
  (pattern === undefined || pattern.test(err.message));

describe('input limits', () => {
  it('pins the caps', () => {
    assert.equal(INPUT_LIMITS.metadataBytes, 16_384);
    assert.equal(INPUT_LIMITS.metadataDepth, 32);
    assert.equal(INPUT_LIMITS.runInputChars, 100_000);
    assert.equal(INPUT_LIMITS.nameLength, 64);
    assert.equal(INPUT_LIMITS.displayNameLength, 200);
    assert.equal(INPUT_LIMITS.labels, 32);
    assert.equal(INPUT_LIMITS.labelValueLength, 128);
    assert.equal(INPUT_LIMITS.pageSize, 1000);
    assert.equal(INPUT_LIMITS.idLength, 128);
    assert.ok(Object.isFrozen(INPUT_LIMITS));
  });

  it('measures depth with its own stack: 5,000 levels or a cycle are refused, not a RangeError', () => {
    assert.doesNotThrow(() => checkJsonShape('metadata', nested(32), 32, 1000));
    assert.throws(
      () => checkJsonShape('metadata', nested(33), 32, 1000),
      refusedFor('metadata', /32 levels/),
    );
    assert.throws(() => checkJsonShape('metadata', nested(5000), 32, 1000), refusedFor('metadata'));
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle['self'] = cycle;
    assert.throws(() => parseMetadata('metadata', cycle), refusedFor('metadata'));
  });

  it('refuses a value sharing sub-objects that would serialise exponentially, by counting values', () => {
    let shared: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 25; i++) shared = { left: shared, right: shared }; // 2^25 leaves as JSON
    assert.throws(() => parseMetadata('metadata', shared), refusedFor('metadata', /more than 16384 values/));
  });

  it('caps metadata at 16 KiB of JSON and returns a plain copy', () => {
    const original = { ticket: 'T-1', tags: ['a', 'b'] };
    const copy = parseMetadata('metadata', original);
    assert.deepEqual(copy, original);
    assert.notEqual(copy, original);
    assert.deepEqual(parseMetadata('metadata', undefined), {});
    assert.throws(() => parseMetadata('metadata', ['x']), refusedFor('metadata', /JSON object/));
    assert.throws(() => parseMetadata('metadata', { n: 10n }), refusedFor('metadata', /JSON-serialisable/));
    const fits = { blob: 'x'.repeat(INPUT_LIMITS.metadataBytes - 11) }; // {"blob":"…"} adds 11 bytes
    assert.doesNotThrow(() => parseMetadata('metadata', fits));
    assert.throws(
      () => parseMetadata('metadata', { blob: `${fits.blob}x` }),
      refusedFor('metadata', /at most 16384 bytes, got 16385/),
    );
  });

  it('a run input is 1 to 100,000 characters', () => {
    assert.equal(parseRunInput('hi'), 'hi');
    assert.throws(() => parseRunInput(''), refusedFor('input'));
    assert.throws(() => parseRunInput('x'.repeat(100_001)), refusedFor('input'));
    assert.throws(() => parseRunInput(5), refusedFor('input'));
  });

  describe('every facade applies them', () => {
    let pool: AgentPool;
    before(async () => {
      pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
      await pool.agents.create('default', { name: 'echo' });
    });
    after(() => pool.close());

    const deep = nested(5000);
    const big = { blob: 'x'.repeat(20_000) };

    it('agents', async () => {
      await assert.rejects(
        pool.agents.create('default', { name: 'a', metadata: deep }),
        refusedFor('metadata'),
      );
      await assert.rejects(
        pool.agents.create('default', { name: 'a', metadata: big }),
        refusedFor('metadata'),
      );
    });

    it('threads', async () => {
      await assert.rejects(pool.threads.create('default', { metadata: deep }), refusedFor('metadata'));
      await assert.rejects(pool.threads.create('default', { metadata: big }), refusedFor('metadata'));
      const given = { ticket: 'T-1' };
      const thread = await pool.threads.create('default', { metadata: given });
      given.ticket = 'changed';
      assert.deepEqual((await pool.threads.get('default', thread.id)).metadata, { ticket: 'T-1' });
    });

    it('runs: metadata gets the same 16 KiB cap as agents and threads', async () => {
      await assert.rejects(
        pool.runs.start('default', 'echo', { input: 'hi', metadata: deep }),
        refusedFor('metadata'),
      );
      await assert.rejects(
        pool.runs.start('default', 'echo', { input: 'hi', metadata: big }),
        refusedFor('metadata', /at most 16384 bytes/),
      );
      await assert.rejects(
        pool.runs.start('default', 'echo', { input: 'hi', threadId: 't'.repeat(129) }),
        refusedFor('threadId'),
      );
      const run = await (
        await pool.runs.start('default', 'echo', { input: 'hi', metadata: { ok: true } })
      ).result;
      assert.deepEqual(run.metadata, { ok: true });
    });

    it('projects: metadata, and the names of projects and keys', async () => {
      await assert.rejects(pool.projects.create({ id: 'p1', metadata: deep }), refusedFor('metadata'));
      await assert.rejects(pool.projects.create({ id: 'p1', metadata: big }), refusedFor('metadata'));
      await assert.rejects(pool.projects.create({ id: 'p1', name: 'n'.repeat(201) }), refusedFor('name'));
      const project = await pool.projects.create({
        id: 'p1',
        name: 'Project one',
        metadata: { tier: 'gold' },
      });
      assert.deepEqual(project.metadata, { tier: 'gold' });
      await assert.rejects(pool.projects.createKey('p1', 'k'.repeat(201)), refusedFor('name'));
      assert.equal((await pool.projects.createKey('p1', 'ci')).info.name, 'ci');
    });
  });
});
