import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createAgentPool, isAgentPoolError, ManualClock } from '../src/index.ts';
import { tempDir } from './support/temp-dir.ts';

describe('createAgentPool', () => {
  const cleanups: (() => void)[] = [];
  after(() => {
    for (const c of cleanups) c();
  });
  const dataDir = () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };

  it('keeps definitions in the SQLite file across restarts', async () => {
    const dir = dataDir();
    const first = await createAgentPool({ dataDir: dir });
    await first.agents.apply('default', { name: 'support', instructions: 'v1' });
    await first.agents.update('default', 'support', { instructions: 'v2' });
    await first.close();
    const second = await createAgentPool({ dataDir: dir });
    try {
      const agent = await second.agents.get('default', 'support');
      assert.equal(agent.activeVersion, 2);
      assert.equal(agent.spec.instructions, 'v2');
      const lease = await second.instances.acquire('default', 'support');
      assert.equal(lease.agent.spec.instructions, 'v2');
      lease.release();
    } finally {
      await second.close();
    }
  });

  it('prewarms every hot agent of every project', async () => {
    const pool = await createAgentPool({ store: 'memory' });
    try {
      await pool.agents.create('one', { name: 'vip', tier: 'hot' });
      await pool.agents.create('two', { name: 'vip', tier: 'hot' });
      await pool.agents.create('two', { name: 'plain' });
      assert.equal(await pool.prewarmHot(), 2);
      assert.equal(pool.instances.instance('one', 'vip')?.pinned, true);
      assert.equal(pool.instances.instance('two', 'vip')?.pinned, true);
      assert.equal(pool.instances.instance('two', 'plain'), undefined);
    } finally {
      await pool.close();
    }
  });

  it('sweeps expired ephemeral agents on its clock', async () => {
    const clock = new ManualClock();
    const pool = await createAgentPool({ store: 'memory', clock, ttlSweepIntervalMs: 10_000 });
    try {
      await pool.agents.create('default', { name: 'temp', ttlSeconds: 30 });
      for (let t = 0; t < 4; t++) {
        clock.advance(10_000);
        await new Promise((r) => setImmediate(r));
      }
      await assert.rejects(pool.agents.get('default', 'temp'), (e) => isAgentPoolError(e, 'AGENT_NOT_FOUND'));
    } finally {
      await pool.close();
    }
  });

  it('evaluates its feature flags per project and request, and rejects a bad one by field', async () => {
    const pool = await createAgentPool({
      store: 'memory',
      ttlSweepIntervalMs: 0,
      flags: {
        everyone: { strategy: 'all' },
        'acme-only': { strategy: 'allowlist', projects: ['acme'] },
        tenth: { strategy: 'percentage', percent: 10 },
      },
    });
    try {
      assert.equal(pool.flags.isEnabled('everyone', { project: 'p', key: 'r1' }), true);
      assert.equal(pool.flags.isEnabled('acme-only', { project: 'acme', key: 'r1' }), true);
      assert.equal(pool.flags.isEnabled('acme-only', { project: 'other', key: 'r1' }), false);
      const on = Array.from({ length: 2000 }, (_, i) =>
        pool.flags.isEnabled('tenth', { project: 'p', key: `r${i}` }),
      );
      const share = on.filter(Boolean).length / on.length;
      assert.ok(share > 0.07 && share < 0.13, `share ${share}`);
    } finally {
      await pool.close();
    }
    await assert.rejects(
      createAgentPool({ store: 'memory', flags: { beta: { strategy: 'percentage', percent: 101 } } }),
      (err: unknown) =>
        isAgentPoolError(err, 'VALIDATION_FAILED') && err.details.field === 'flags.beta.percent',
    );
  });

  it('closing interrupts a run still being accepted and refuses new ones with POOL_CLOSED', async () => {
    const pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
    await pool.agents.create('default', { name: 'support' });
    const accepting = pool.runs.start('default', 'support', { input: 'hello' });
    const closing = pool.close(); // while start() is still awaiting the registry
    const run = await (await accepting).result;
    assert.equal(run.status, 'interrupted');
    assert.equal(run.error?.code, 'RUN_INTERRUPTED');
    await closing;
    await assert.rejects(pool.runs.start('default', 'support', { input: 'late' }), (err: unknown) =>
      isAgentPoolError(err, 'POOL_CLOSED'),
    );
  });

  it('rejects bad options naming the field, and fails further use after close', async () => {
    await assert.rejects(
      createAgentPool({ store: 'memory', pool: { maxActive: 0 } }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details.field === 'pool.maxActive',
    );
    await assert.rejects(createAgentPool({ store: 'nope' as 'memory' }), /store must be one of/);
    const pool = await createAgentPool({ store: 'memory' });
    await pool.close();
    await assert.rejects(pool.instances.acquire('default', 'x'), (e) => isAgentPoolError(e, 'POOL_CLOSED'));
  });
});
