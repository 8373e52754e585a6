import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAgentPool, ManualClock } from '../../src/index.ts';

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
});
