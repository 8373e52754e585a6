/**
 * The Prometheus series of the pool's self-management, on the pool's registry: the working-set
 * checkpoint and the start's prewarm, the autoscaler's capacity and decisions, and per-tier
 * instances, leases, limits and moves. Every figure is read from the components when scraped, so
 * nothing is paid between scrapes.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Autoscaler } from './autoscaler.ts';
import type { WorkingSetCheckpointer } from './checkpoint.ts';
import { SERVING_TIERS } from './tier-options.ts';
import type { TierClassifier } from './tiers.ts';

/** Where the series read from. */
export interface ScalingMetricsSources {
  checkpoint: WorkingSetCheckpointer;
  autoscaler: Autoscaler;
  tiers: TierClassifier;
}

/** Registers the series on `registry`. */
export function registerScalingMetrics(registry: Registry, s: ScalingMetricsSources): void {
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        collect(this);
      },
    });
  const total = (name: string, help: string, labelNames: string[], collect: (c: Counter) => void) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        collect(this);
      },
    });

  // working-set checkpoint
  total(
    'agentpool_checkpoint_saves_total',
    'Working-set checkpoints saved, by outcome.',
    ['outcome'],
    (c) => {
      const st = s.checkpoint.stats();
      c.inc({ outcome: 'ok' }, st.saves);
      c.inc({ outcome: 'failed' }, st.saveFailures);
    },
  );
  gauge('agentpool_checkpoint_agents', 'Agents in the last working-set checkpoint saved.', [], (g) =>
    g.set(s.checkpoint.stats().lastSavedAgents),
  );
  gauge(
    'agentpool_checkpoint_last_saved_timestamp_seconds',
    'When the last working-set checkpoint was saved (0: never).',
    [],
    (g) => g.set((s.checkpoint.stats().lastSavedAt ?? 0) / 1000),
  );
  gauge(
    'agentpool_warmup_agents',
    "Agents of the start's prewarm from the checkpoint, by outcome (warmed, skipped, failed).",
    ['outcome'],
    (g) => {
      const w = s.checkpoint.stats().warmup;
      g.set({ outcome: 'warmed' }, w?.warmed ?? 0);
      g.set({ outcome: 'skipped' }, w?.skipped ?? 0);
      g.set({ outcome: 'failed' }, w?.failed ?? 0);
    },
  );
  gauge('agentpool_warmup_duration_seconds', "How long the start's prewarm took.", [], (g) =>
    g.set((s.checkpoint.stats().warmup?.durationMs ?? 0) / 1000),
  );

  // autoscaling
  gauge(
    'agentpool_pool_capacity',
    'Live instances the pool may hold now (the autoscaler moves it).',
    [],
    (g) => g.set(s.autoscaler.stats().capacity),
  );
  gauge(
    'agentpool_pool_capacity_bounds',
    "The autoscaler's bounds (minActive, maxActive).",
    ['bound'],
    (g) => {
      const st = s.autoscaler.stats();
      g.set({ bound: 'min' }, st.minActive);
      g.set({ bound: 'max' }, st.maxActive);
    },
  );
  total(
    'agentpool_pool_scaling_decisions_total',
    'Capacity changes by the autoscaler, by direction.',
    ['direction'],
    (c) => {
      const d = s.autoscaler.stats().decisions;
      c.inc({ direction: 'up' }, d.up);
      c.inc({ direction: 'down' }, d.down);
    },
  );
  total(
    'agentpool_pool_scaling_blocked_total',
    'Readings where load asked for more capacity and the heap (memoryLimitBytes) refused it.',
    [],
    (c) => c.inc(s.autoscaler.stats().blockedByMemory),
  );

  // tiers
  gauge(
    'agentpool_tier_instances',
    'Live instances by serving tier (auto agents by their class).',
    ['tier'],
    (g) => {
      const by = s.tiers.stats().byTier;
      for (const tier of SERVING_TIERS) g.set({ tier }, by[tier].instances);
    },
  );
  gauge('agentpool_tier_leases', "Leases (runs) held on each serving tier's instances.", ['tier'], (g) => {
    const by = s.tiers.stats().byTier;
    for (const tier of SERVING_TIERS) g.set({ tier }, by[tier].leases);
  });
  gauge('agentpool_tier_limit', "Each tier's limits (0: none).", ['tier', 'limit'], (g) => {
    const by = s.tiers.stats().byTier;
    for (const tier of SERVING_TIERS) {
      g.set({ tier, limit: 'maxInstances' }, by[tier].maxInstances);
      g.set({ tier, limit: 'maxConcurrentRuns' }, by[tier].maxConcurrentRuns);
    }
  });
  gauge(
    'agentpool_tier_classified_agents',
    'Tracked auto agents by the tier they are classified into.',
    ['tier'],
    (g) => {
      const c = s.tiers.stats().classified;
      for (const tier of SERVING_TIERS) g.set({ tier }, c[tier]);
    },
  );
  total('agentpool_tier_moves_total', 'Auto agents moved between tiers, by destination.', ['to'], (c) => {
    const m = s.tiers.stats().moves;
    for (const tier of SERVING_TIERS) c.inc({ to: tier }, m[tier]);
  });
}
