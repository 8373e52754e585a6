/**
 * Prometheus series of retention, on the pool's registry, read from `Retention.stats()` when
 * scraped: `agentpool_retention_deleted_total{kind="runs|messages|threads"}` and the sweeps made.
 */
import { Counter, type Registry } from 'prom-client';
import type { RetentionStats } from './run/retention.ts';

/** Registers the retention series on `registry`, reading `stats` at each scrape. */
export function registerRetentionMetrics(registry: Registry, stats: () => RetentionStats): void {
  const registers = [registry];
  new Counter({
    name: 'agentpool_retention_deleted_total',
    help: "Data deleted by this node's retention sweeps, by kind (runs, messages, threads).",
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      const { deleted } = stats();
      this.inc({ kind: 'runs' }, deleted.runs);
      this.inc({ kind: 'messages' }, deleted.messages);
      this.inc({ kind: 'threads' }, deleted.threads);
    },
  });
  new Counter({
    name: 'agentpool_retention_sweeps_total',
    help: 'Retention sweeps this node made.',
    registers,
    collect() {
      this.reset();
      this.inc(stats().sweeps);
    },
  });
}
