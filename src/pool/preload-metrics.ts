/**
 * Prometheus series of preloading, read from the preloader's figures at scrape time (the run path
 * pays nothing for them), on the pool's registry.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PreloadStats } from './preload.ts';

/** Registers the preload series on `registry`; `stats` is read once per metric per scrape. */
export function registerPreloadMetrics(registry: Registry, stats: () => PreloadStats): void {
  const registers = [registry];
  const bySource = (name: string, help: string, read: (s: PreloadStats['counts']['preload']) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        const { counts } = stats();
        for (const source of ['preload', 'prefetch'] as const) this.inc({ source }, read(counts[source]));
      },
    });
  bySource(
    'agentpool_preloads_total',
    'Instances activated ahead of use, by source (preload: idle capacity filled by score; prefetch: follows the agent just acquired).',
    (c) => c.issued,
  );
  bySource(
    'agentpool_preloads_used_total',
    'Preloaded instances that served a lease before leaving.',
    (c) => c.used,
  );
  bySource(
    'agentpool_preloads_wasted_total',
    'Preloaded instances that left (evicted, idle, retired) without serving a lease.',
    (c) => c.wasted,
  );
  new Counter({
    name: 'agentpool_preloads_skipped_total',
    help: 'Preloads that activated nothing, by source and reason (no-room, refused, failed, closed).',
    labelNames: ['source', 'reason'],
    registers,
    collect() {
      this.reset();
      const { skipped } = stats();
      for (const source of ['preload', 'prefetch'] as const) {
        for (const [reason, n] of Object.entries(skipped[source])) this.inc({ source, reason }, n);
      }
    },
  });
  new Gauge({
    name: 'agentpool_preload_followed_agents',
    help: 'Agents whose followers (agents run next on their threads) are tracked for prefetching.',
    registers,
    collect() {
      this.set(stats().follows.trackedAgents);
    },
  });
}
