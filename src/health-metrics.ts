/**
 * The Prometheus families of the health monitor, read at scrape time from its last report:
 * the node's status, each check's value and status, and what the monitor did since start
 * (timeouts, stuck instances, evictions under memory pressure, runs shed). prom-client's own
 * process and GC metrics (`process_*`, `nodejs_*`) go on the same registry, registered at the
 * first scrape so a pool nobody scrapes runs no samplers for them.
 */
import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';
import type { HealthReport, HealthStatus } from './pool/health.ts';

const STATUS_VALUES: Readonly<Record<HealthStatus, number>> = { ok: 0, degraded: 1, overloaded: 2 };

/** Registers the health families on `registry`, reading `report()` when scraped. */
export function registerHealthMetrics(registry: Registry, report: () => HealthReport | undefined): void {
  const registers = [registry];
  new Gauge({
    name: 'agentpool_health_status',
    help: 'Health of this node at the last check: 0 ok, 1 degraded, 2 overloaded (new runs refused).',
    registers,
    collect() {
      const r = report();
      if (r !== undefined) this.set(STATUS_VALUES[r.status]);
    },
  });
  new Gauge({
    name: 'agentpool_health_check_value',
    help: 'The value of each health check at the last check (ms for event_loop_delay, a 0..1 ratio for the others, a count for stuck_instances).',
    labelNames: ['check'],
    registers,
    collect() {
      this.reset();
      for (const c of report()?.checks ?? []) this.set({ check: c.name }, c.value);
    },
  });
  new Gauge({
    name: 'agentpool_health_check_status',
    help: 'The status of each health check at the last check: 0 ok, 1 degraded, 2 overloaded.',
    labelNames: ['check'],
    registers,
    collect() {
      this.reset();
      for (const c of report()?.checks ?? []) this.set({ check: c.name }, STATUS_VALUES[c.status]);
    },
  });
  const total = (name: string, help: string, read: (r: HealthReport) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        const r = report();
        this.reset();
        if (r !== undefined) this.inc(read(r));
      },
    });
  total(
    'agentpool_activation_timeouts_total',
    'Activations failed with ACTIVATION_TIMEOUT by the health monitor.',
    (r) => r.totals.activationTimeouts,
  );
  total(
    'agentpool_run_timeouts_total',
    "Runs cancelled with RUN_TIMEOUT for running past their agent's runTimeoutMs.",
    (r) => r.totals.runTimeouts,
  );
  total(
    'agentpool_instance_stuck_total',
    'Busy periods of instances reported stuck (busy longer than stuckAfterMs).',
    (r) => r.totals.stuckInstances,
  );
  total(
    'agentpool_pressure_evictions_total',
    'Idle instances evicted because memory (heap or RSS) was past its degraded threshold.',
    (r) => r.totals.pressureEvictions,
  );
  total(
    'agentpool_runs_shed_total',
    'New runs refused with OVERLOADED while the node was overloaded.',
    (r) => r.totals.shedRuns,
  );
}

/** Registers prom-client's process and GC metrics on `registry` (once per registry). */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
