/**
 * Prometheus metrics of one agent pool, in a registry of its own (two pools in one process keep
 * their figures apart). Pool figures are read from `stats()` when scraped, so the warm path pays
 * nothing for them; run figures arrive through the run layer's observer. Every name starts with
 * `agentpool_`. Per-agent series are bounded (agent-activity.ts): the most active
 * `maxAgentSeries` agents get their own, the rest share `agent="(other)"`, and the totals are
 * exact; so a scrape costs the same with a hundred agents or a million.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { AgentActivity } from './agent-activity.ts';
import { type AgentSnapshot, agentSeriesMetrics } from './agent-series-metrics.ts';
import type { HistogramSnapshot } from './core/metrics.ts';
import { type CollectedHistogram, histogramSamples, LabelledHistogram } from './labelled-histogram.ts';
import {
  type MetricsOptions,
  type ResolvedMetricsOptions,
  resolveMetricsOptions,
} from './metrics-options.ts';
import type { GovernanceObserver, ProjectGovernanceSample } from './governance/governance.ts';
import type { BreakerState, ModelGuardStats, ModelObserver } from './models/resilient-model.ts';
import type { HealthReport } from './pool/health.ts';
import type { PoolStats } from './pool/pool.ts';
import { registerHealthMetrics, registerProcessMetrics } from './health-metrics.ts';
import type { RunObserver } from './run/observer.ts';
import type { RunRecord } from './store/ports.ts';

export {
  type MetricsOptions,
  type ResolvedMetricsOptions,
  resolveMetricsOptions,
} from './metrics-options.ts';

/** Where scraped figures come from. */
export interface MetricsSources {
  poolStats: () => PoolStats;
  runsInFlight: () => { queued: number; running: number };
  /** Runs in flight and budget windows per project. */
  governance: () => ProjectGovernanceSample[];
  /** The resilience guard of each model used. */
  models: () => ModelGuardStats[];
  /** The health monitor's last report. @default no health series */
  health?: () => HealthReport;
}

/** Breaker states as gauge values: 0 closed, 1 half-open, 2 open, 3 isolated. */
const BREAKER_VALUES: Readonly<Record<BreakerState, number>> = {
  closed: 0,
  'half-open': 1,
  open: 2,
  isolated: 3,
};

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The pool's metrics: a prom-client registry and the run observer that feeds it. */
export class PoolMetrics implements RunObserver, GovernanceObserver, ModelObserver {
  readonly registry = new Registry();
  readonly options: ResolvedMetricsOptions;
  /** Per-agent run figures: the bounded series of `/metrics` and the figures of the stats API. */
  readonly agents: AgentActivity;
  readonly #runSeconds: LabelledHistogram<'status'>;
  readonly #modelSeconds: LabelledHistogram<'model' | 'outcome'>;
  readonly #threadBusy: Counter;
  readonly #refusals: Counter<'project' | 'code'>;
  #snapshot: Snapshot | undefined;
  readonly #retries: Counter<'model'>;
  readonly #fallbacks: Counter<'from' | 'to'>;
  readonly #throttled: Counter<'model' | 'limit'>;
  readonly #rejected: Counter<'model' | 'code'>;
  readonly #usageExceededCap: Counter<'model'>;
  /** Whether prom-client's process and GC metrics are registered yet (at the first scrape). */
  #processMetrics = false;

  constructor(sources: MetricsSources, options?: MetricsOptions) {
    this.options = resolveMetricsOptions(options);
    this.agents = new AgentActivity(this.options);
    const registers = [this.registry];
    // One snapshot of each source per scrape, shared by the series that read it.
    const poolStats = () => this.#read(sources).pool;
    for (const metric of agentSeriesMetrics(() => this.#read(sources).agents)) {
      this.registry.registerMetric(metric as never);
    }
    if (sources.health !== undefined) registerHealthMetrics(this.registry, sources.health);
    const governance = () => this.#read(sources).governance;
    const models = () => this.#read(sources).models;

    new Gauge({
      name: 'agentpool_instances',
      help: 'Live instances by lifecycle state.',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [state, n] of Object.entries(poolStats().byState)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'agentpool_instances_by_tier',
      help: 'Live instances by tier.',
      labelNames: ['tier'],
      registers,
      collect() {
        for (const [tier, n] of Object.entries(poolStats().byTier)) this.set({ tier }, n);
      },
    });
    const gauge = (name: string, help: string, read: (s: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(poolStats()));
        },
      });
    gauge('agentpool_instances_max', 'The pool’s maxActive.', (s) => s.maxActive);
    gauge('agentpool_instance_bytes', 'Estimated bytes of resident instances.', (s) => s.bytes);
    gauge('agentpool_cache_hit_ratio', 'Warm hits / (hits + misses) since start.', (s) => s.hitRatio);
    gauge('agentpool_acquire_waiting', 'Acquirers waiting for room in the pool.', (s) => s.waiting);
    const total = (name: string, help: string, read: (s: PoolStats) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read(poolStats()));
        },
      });
    total('agentpool_cache_hits_total', 'Acquires served by a live instance.', (s) => s.hits);
    total('agentpool_cache_misses_total', 'Acquires that needed an activation.', (s) => s.misses);
    total('agentpool_activations_total', 'Instances activated.', (s) => s.activations);
    total('agentpool_activation_failures_total', 'Activations that failed.', (s) => s.activationFailures);
    total('agentpool_evictions_total', 'Instances evicted to make room.', (s) => s.evictions);
    total(
      'agentpool_idle_deactivations_total',
      'Instances deactivated after maxIdleMs.',
      (s) => s.idleDeactivations,
    );
    total('agentpool_retirements_total', 'Instances retired by a definition change.', (s) => s.retirements);
    total(
      'agentpool_acquire_timeouts_total',
      'Acquires that timed out waiting for room.',
      (s) => s.acquireTimeouts,
    );
    this.registry.registerMetric(
      snapshotHistogram(
        'agentpool_activation_duration_seconds',
        'Time to activate an instance (store read, model and tool resolution).',
        () => poolStats().activationLatencyMs,
      ) as never,
    );
    this.registry.registerMetric(
      snapshotHistogram(
        'agentpool_acquire_wait_seconds',
        'Time acquirers waited for room in the pool (only those that had to wait).',
        () => poolStats().acquireWaitMs,
      ) as never,
    );
    new Gauge({
      name: 'agentpool_runs_in_flight',
      help: 'Runs accepted and not finished: queued (waiting for their thread or instance) or running.',
      labelNames: ['state'],
      registers,
      collect() {
        const { queued, running } = sources.runsInFlight();
        this.set({ state: 'queued' }, queued);
        this.set({ state: 'running' }, running);
      },
    });

    new Gauge({
      name: 'agentpool_project_runs_in_flight',
      help: 'Runs in flight per project (what maxConcurrentRuns limits).',
      labelNames: ['project'],
      registers,
      collect() {
        this.reset();
        for (const s of governance()) this.set({ project: s.project }, s.running);
      },
    });
    const budgetGauge = (
      name: string,
      help: string,
      read: (w: { spent: number; remaining: number | null }) => number | null,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['project', 'window'],
        registers,
        collect() {
          this.reset();
          for (const s of governance()) {
            for (const window of ['daily', 'monthly'] as const) {
              const w = s[window];
              const value = w === undefined ? null : read(w);
              if (value !== null) this.set({ project: s.project, window }, value);
            }
          }
        },
      });
    budgetGauge(
      'agentpool_budget_spent_usd',
      'Spent in the current budget window (UTC day, month).',
      (w) => w.spent,
    );
    budgetGauge(
      'agentpool_budget_remaining_usd',
      'Left in the current budget window after spending and reservations; only windows with a limit.',
      (w) => w.remaining,
    );

    new Gauge({
      name: 'agentpool_model_breaker_state',
      help: 'Circuit breaker of each model: 0 closed, 1 half-open, 2 open, 3 isolated.',
      labelNames: ['model'],
      registers,
      collect() {
        this.reset();
        for (const m of models()) this.set({ model: m.model }, BREAKER_VALUES[m.breaker]);
      },
    });
    new Gauge({
      name: 'agentpool_model_calls_in_flight',
      help: 'Model calls running (inside the bulkhead) and queued for it, by model.',
      labelNames: ['model', 'state'],
      registers,
      collect() {
        this.reset();
        for (const m of models()) {
          this.set({ model: m.model, state: 'running' }, m.inFlight);
          this.set({ model: m.model, state: 'queued' }, m.queued);
        }
      },
    });
    this.#retries = new Counter({
      name: 'agentpool_model_retries_total',
      help: 'Model call attempts retried after a retryable failure, by model.',
      labelNames: ['model'],
      registers,
    });
    this.#fallbacks = new Counter({
      name: 'agentpool_model_fallbacks_total',
      help: 'Model calls handed to the next fallback model, by the model that failed and the next one.',
      labelNames: ['from', 'to'],
      registers,
    });
    this.#throttled = new Counter({
      name: 'agentpool_model_throttled_total',
      help: 'Model calls refused by a provider rate limit (requests or tokens per minute), by model.',
      labelNames: ['model', 'limit'],
      registers,
    });
    this.#rejected = new Counter({
      name: 'agentpool_model_rejected_total',
      help: 'Model calls refused without reaching the provider (breaker open, bulkhead full, rate limit).',
      labelNames: ['model', 'code'],
      registers,
    });
    this.#usageExceededCap = new Counter({
      name: 'agentpool_model_usage_exceeded_cap_total',
      help: 'Model calls whose provider reported more than the call was allowed (output tokens over maxOutputTokens, or a cost over its reservation); charged at the cap.',
      labelNames: ['model'],
      registers,
    });
    this.#refusals = new Counter({
      name: 'agentpool_governance_refusals_total',
      help: 'Runs and agents refused by quotas and budgets, by project and code.',
      labelNames: ['project', 'code'],
      registers,
    });
    // Observed on every run and model call: a labelled series found by one Map lookup.
    this.#runSeconds = new LabelledHistogram({
      name: 'agentpool_run_duration_seconds',
      help: 'From acceptance to terminal status.',
      labelNames: ['status'],
      buckets: SECONDS_BUCKETS,
    });
    this.#modelSeconds = new LabelledHistogram({
      name: 'agentpool_model_call_duration_seconds',
      help: 'One model call (a step), by model and outcome.',
      labelNames: ['model', 'outcome'],
      buckets: SECONDS_BUCKETS,
    });
    this.registry.registerMetric(this.#runSeconds as never);
    this.registry.registerMetric(this.#modelSeconds as never);
    this.#threadBusy = new Counter({
      name: 'agentpool_thread_busy_rejections_total',
      help: 'Runs refused because their thread was busy.',
      registers,
    });
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    // A new scrape reads afresh, even when work since the last one never left the microtask queue.
    this.#snapshot = undefined;
    if (!this.#processMetrics) {
      this.#processMetrics = true;
      registerProcessMetrics(this.registry);
    }
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** The sources read once per scrape (however it is started): the snapshot lasts one turn of the event loop. */
  #read(sources: MetricsSources): Snapshot {
    if (this.#snapshot === undefined) {
      this.#snapshot = {
        ...snapshotOf(sources),
        agents: { totals: this.agents.totals(), series: this.agents.scrape() },
      };
      setImmediate(() => (this.#snapshot = undefined));
    }
    return this.#snapshot;
  }

  modelCall(model: string, seconds: number, ok: boolean): void {
    this.#modelSeconds.observe({ model, outcome: ok ? 'ok' : 'error' }, seconds);
  }

  runFinished(run: RunRecord): void {
    this.agents.record(run);
    this.#runSeconds.observe(
      { status: run.status },
      ((run.finishedAt ?? run.createdAt) - run.createdAt) / 1000,
    );
  }

  /** Forgets a deleted project's per-agent figures and series (the totals keep what it ran). */
  forgetProject(project: string): void {
    this.agents.forgetProject(project);
  }

  threadBusy(): void {
    this.#threadBusy.inc();
  }

  refused(project: string, code: string): void {
    this.#refusals.inc({ project, code });
  }

  retried(model: string): void {
    this.#retries.inc({ model });
  }

  throttled(model: string, limit: 'requests' | 'tokens'): void {
    this.#throttled.inc({ model, limit });
  }

  rejected(model: string, code: string): void {
    this.#rejected.inc({ model, code });
  }

  /** The breaker gauge is read from the guards at scrape time; nothing to count here. */
  breakerChanged(): void {}

  fallback(from: string, to: string): void {
    this.#fallbacks.inc({ from, to });
  }

  usageExceededCap(model: string): void {
    this.#usageExceededCap.inc({ model });
  }
}

/** What one scrape reads of the pool. */
interface Snapshot {
  pool: PoolStats;
  governance: ProjectGovernanceSample[];
  models: ModelGuardStats[];
  agents: AgentSnapshot;
}

function snapshotOf(sources: MetricsSources): Omit<Snapshot, 'agents'> {
  return { pool: sources.poolStats(), governance: sources.governance(), models: sources.models() };
}

/** A Prometheus histogram whose buckets are read, in seconds, from a millisecond snapshot. */
function snapshotHistogram(name: string, help: string, read: () => HistogramSnapshot): CollectedHistogram {
  const type = 'histogram';
  const aggregator = 'sum';
  return {
    name,
    help,
    type,
    aggregator,
    get: () => ({ name, help, type, aggregator, values: histogramSamples(name, read(), {}, 1000) }),
  };
}
