import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAgentPool, ManualClock } from '../../src/index.ts';
import { buildServer } from '../../src/server/app.ts';

describe('scaling metrics', () => {
  it('exposes the checkpoint, autoscaler and tier series on the pool registry', async () => {
    const clock = new ManualClock();
    const pool = await createAgentPool({
      store: 'memory',
      clock,
      pool: {
        maxActive: 4,
        autoscaling: { enabled: true, minActive: 2, maxActive: 16, intervalMs: 1000 },
        tiers: { limits: { cold: { maxConcurrentRuns: 3 } } },
      },
    });
    try {
      await pool.checkpoint.start();
      for (let i = 0; i < 4; i++) await pool.agents.create('default', { name: `a${i}` });
      const leases = [];
      for (let i = 0; i < 4; i++) leases.push(await pool.instances.acquire('default', `a${i}`));
      clock.advance(1000); // 4 / 4 busy: grows
      await pool.checkpoint.save();
      const text = await pool.metrics.registry.metrics();
      const line = (series: string) => text.split('\n').find((l) => l.startsWith(series + ' '));
      assert.equal(line('agentpool_pool_capacity'), 'agentpool_pool_capacity 5');
      assert.equal(line('agentpool_instances_max'), 'agentpool_instances_max 5');
      assert.equal(
        line('agentpool_pool_scaling_decisions_total{direction="up"}'),
        'agentpool_pool_scaling_decisions_total{direction="up"} 1',
      );
      assert.equal(
        line('agentpool_checkpoint_saves_total{outcome="ok"}'),
        'agentpool_checkpoint_saves_total{outcome="ok"} 1',
      );
      assert.equal(line('agentpool_checkpoint_agents'), 'agentpool_checkpoint_agents 4');
      assert.equal(line('agentpool_tier_leases{tier="warm"}'), 'agentpool_tier_leases{tier="warm"} 4');
      assert.equal(
        line('agentpool_tier_limit{tier="cold",limit="maxConcurrentRuns"}'),
        'agentpool_tier_limit{tier="cold",limit="maxConcurrentRuns"} 3',
      );
      assert.ok(line('agentpool_warmup_agents{outcome="warmed"}') !== undefined);
      for (const l of leases) l.release();
    } finally {
      await pool.close();
    }
  });

  it('shows the admin the checkpoint, autoscaling and tiers in GET /v1/pool/stats', async () => {
    const pool = await createAgentPool({
      store: 'memory',
      clock: new ManualClock(),
      pool: { maxActive: 4, autoscaling: { enabled: true, minActive: 2, maxActive: 16 } },
    });
    const app = await buildServer(pool);
    try {
      await pool.checkpoint.start();
      const stats = (await app.inject({ method: 'GET', url: '/v1/pool/stats' })).json();
      assert.equal(stats.scope, 'pool');
      assert.equal(stats.maxActive, 4);
      assert.deepEqual([stats.checkpoint.status, stats.checkpoint.node], ['ready', 'local']);
      assert.deepEqual(
        [stats.autoscaling.enabled, stats.autoscaling.capacity, stats.autoscaling.minActive],
        [true, 4, 2],
      );
      assert.deepEqual(stats.tiers.byTier.warm, {
        instances: 0,
        leases: 0,
        maxInstances: 0,
        maxConcurrentRuns: 0,
      });
    } finally {
      await app.close();
      await pool.close();
    }
  });
});
