/**
 * Prometheus series of failure recovery, on the pool's registry. Read from `Recovery.stats()` when
 * scraped, so counting a failure or taking a step costs an integer increment and nothing more.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { RECOVERY_STRATEGIES, type RecoveryStats } from './pool/recovery.ts';

/** Registers the recovery series on `registry`, reading `stats` at each scrape. */
export function registerRecoveryMetrics(registry: Registry, stats: () => RecoveryStats): void {
  const registers = [registry];
  new Counter({
    name: 'agentpool_recovery_steps_total',
    help: 'Failure recovery steps taken, by strategy (restart, recover, migrate, escalate).',
    labelNames: ['strategy'],
    registers,
    collect() {
      this.reset();
      const { steps } = stats();
      for (const strategy of RECOVERY_STRATEGIES) this.inc({ strategy }, steps[strategy]);
    },
  });
  new Counter({
    name: 'agentpool_recovery_failures_total',
    help: "Failures counted towards agents' recovery, by kind (activation, run).",
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      const { failures } = stats();
      this.inc({ kind: 'activation' }, failures.activation);
      this.inc({ kind: 'run' }, failures.run);
    },
  });
  new Gauge({
    name: 'agentpool_agents_degraded',
    help: 'Agents failure recovery marked degraded (their runs answer 503 AGENT_DEGRADED).',
    registers,
    collect() {
      this.set(stats().degraded);
    },
  });
}
