/**
 * The health monitor: every `intervalMs`, on the injected clock, it enforces the timeouts nothing
 * else watches (activations past `activationTimeoutMs`, runs past their agent's `runTimeoutMs`),
 * reports instances busy whose leases have not moved for `stuckAfterMs`, and reads the process (event-loop delay and
 * utilisation, heap, RSS, CPU) against thresholds that make the node `ok`, `degraded` or
 * `overloaded`. Overloaded, the node sheds load: it is the run manager's {@link LoadGate}, so new
 * runs get 503 `OVERLOADED` with a `Retry-After` while runs in flight finish. Under memory
 * pressure it shrinks the activation cache (idle, unpinned, not-hot instances only).
 *
 * Nothing here runs per run: the run path reads one boolean; everything else happens once per
 * interval, on a timer that never keeps the process alive.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { AgentPoolError } from '../core/errors.ts';
import type { HealthBus, HealthCheckSummary, HealthEvent, HealthStatus } from './health-events.ts';
import type { ResolvedHealthOptions, ResolvedHealthThresholds } from './health-options.ts';
import type { AgentInstance } from './instance.ts';
import type { LoadGate, TimedOutRun } from './load-gate.ts';
import type { InstancePool } from './pool.ts';
import { type HealthReadings, type ProcessReading, processReadings } from './process-readings.ts';

export type { HealthEvent, HealthStatus } from './health-events.ts';

/** One check of a report. */
export interface HealthCheck {
  /** `event_loop_delay`, `event_loop_utilization`, `heap`, `rss`, `cpu`, `stuck_instances`. */
  readonly name: string;
  readonly status: HealthStatus;
  readonly value: number;
  /** What `value` measures: `ms`, `ratio`, `count`. */
  readonly unit: string;
  /** The levels `value` is compared with (0: that level is off). */
  readonly threshold: ResolvedHealthThresholds;
  /** For the memory checks: the bytes behind the ratio. */
  readonly bytes?: number;
  readonly limitBytes?: number;
}

/** What the node last found out about itself. */
export interface HealthReport {
  readonly status: HealthStatus;
  /** When the last check ran; null before the first. */
  readonly checkedAt: number | null;
  readonly checks: readonly HealthCheck[];
  /** Totals since start. */
  readonly totals: HealthTotals;
}

/** What the monitor did since start. */
export interface HealthTotals {
  activationTimeouts: number;
  runTimeouts: number;
  /** Busy periods reported stuck. */
  stuckInstances: number;
  /** Instances evicted under memory pressure. */
  pressureEvictions: number;
  /** New runs refused with `OVERLOADED`. */
  shedRuns: number;
}

/** What the monitor is built from. */
export interface HealthMonitorDeps {
  pool: Pick<InstancePool, 'expireActivations' | 'liveInstances' | 'shrink' | 'shrinkable'>;
  /** Ends this node's runs past their agent's `runTimeoutMs` (read when a check runs). @default none */
  expireRuns?: () => TimedOutRun[];
  bus: HealthBus;
  clock: Clock;
  /** Where process readings come from. @default the real ones of this process ({@link processReadings}) */
  readings?: HealthReadings;
  /**
   * Told when a scheduled check throws (a bug, or readings that failed); the next check runs on
   * time regardless. @default ignores it
   */
  onError?: (err: unknown) => void;
}

const SEVERITY: Readonly<Record<HealthStatus, number>> = { ok: 0, degraded: 1, overloaded: 2 };
/** Checks whose trouble is memory: past `degraded`, the cache shrinks. */
const MEMORY_CHECKS: ReadonlySet<string> = new Set(['heap', 'rss']);
const STUCK_THRESHOLD: ResolvedHealthThresholds = { degraded: 1, overloaded: 0 };

/** Watches timeouts, stuck instances and the process; sheds load when overloaded. */
export class HealthMonitor implements LoadGate {
  readonly options: ResolvedHealthOptions;
  readonly #deps: HealthMonitorDeps;
  readonly #readings: HealthReadings | undefined;
  /** The stall each instance was reported stuck for (its `lastUsedAt` then), so it is reported once. */
  readonly #reported = new WeakMap<AgentInstance, number>();
  readonly #totals: HealthTotals = {
    activationTimeouts: 0,
    runTimeouts: 0,
    stuckInstances: 0,
    pressureEvictions: 0,
    shedRuns: 0,
  };
  #report: HealthReport;
  #overloaded = false;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: HealthMonitorDeps, options: ResolvedHealthOptions) {
    this.options = options;
    this.#deps = deps;
    this.#report = { status: 'ok', checkedAt: null, checks: [], totals: this.#totals };
    if (!options.enabled) return;
    this.#readings = deps.readings ?? processReadings();
    this.#schedule();
  }

  /** True while new runs are refused (the last check found the node overloaded). */
  get overloaded(): boolean {
    return this.#overloaded;
  }

  /** The refusal of a new run while overloaded: 503 `OVERLOADED` with `Retry-After`. */
  refusal(): AgentPoolError {
    this.#totals.shedRuns++;
    const failing = this.#report.checks.filter((c) => c.status === 'overloaded').map((c) => c.name);
    return new AgentPoolError(
      'OVERLOADED',
      `this node is overloaded (${failing.join(', ')}) and takes no new runs: retry later or elsewhere`,
      { checks: failing, retryAfterSeconds: this.options.retryAfterSeconds },
    );
  }

  /** The last check's findings (status `ok` and no checks before the first one). */
  report(): HealthReport {
    return this.#report;
  }

  /** The last check's findings, or, before the timer's first check, a check made now (when enabled). */
  current(): HealthReport {
    if (this.#report.checkedAt === null && !this.#closed && this.options.enabled) return this.check();
    return this.#report;
  }

  /**
   * Runs one check now (the timer does this every `intervalMs`): timeouts, stuck instances, the
   * process, and the status with what follows from it. Returns the new report.
   */
  check(): HealthReport {
    const { clock } = this.#deps;
    const now = clock.now();
    this.#expireActivations(now);
    this.#expireRuns(now);
    const stuck = this.#findStuck(now);
    const checks = this.#processChecks(this.#readings?.read());
    checks.push(check('stuck_instances', stuck, 'count', STUCK_THRESHOLD));
    let status: HealthStatus = 'ok';
    for (const c of checks) if (SEVERITY[c.status] > SEVERITY[status]) status = c.status;
    const previous = this.#report.status;
    this.#report = { status, checkedAt: now, checks, totals: this.#totals };
    this.#overloaded = status === 'overloaded';
    if (checks.some((c) => MEMORY_CHECKS.has(c.name) && c.status !== 'ok')) this.#shrink(now);
    if (status !== previous) {
      this.#emit({
        type: 'pool.health.changed',
        at: now,
        from: previous,
        to: status,
        checks: checks.filter((c) => c.status !== 'ok').map(summary),
      });
    }
    return this.#report;
  }

  /** Stops the checks and the process readings. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#timer?.cancel();
    } finally {
      this.#readings?.close();
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      try {
        this.check();
      } catch (err) {
        // A timer's exception would take the process down: one failed check must not.
        this.#deps.onError?.(err);
      } finally {
        this.#schedule();
      }
    }, this.options.intervalMs);
  }

  #expireActivations(now: number): void {
    const timeoutMs = this.options.activationTimeoutMs;
    if (timeoutMs === 0) return;
    for (const a of this.#deps.pool.expireActivations(timeoutMs)) {
      this.#totals.activationTimeouts++;
      this.#emit({ type: 'instance.activation_timed_out', at: now, ...a, timeoutMs });
    }
  }

  #expireRuns(now: number): void {
    for (const r of this.#deps.expireRuns?.() ?? []) {
      this.#totals.runTimeouts++;
      this.#emit({
        type: 'run.timed_out',
        at: now,
        runId: r.runId,
        project: r.project,
        agentId: r.agentId,
        agent: r.agentName,
        elapsedMs: r.elapsedMs,
        timeoutMs: r.timeoutMs,
      });
    }
  }

  /**
   * Counts busy instances whose leases have not moved (none granted, none given back) for
   * `stuckAfterMs`, reporting each stall once. Not "busy for long": a hot agent whose leases
   * overlap without a break is busy for hours and healthy.
   */
  #findStuck(now: number): number {
    const after = this.options.stuckAfterMs;
    if (after === 0) return 0;
    let stuck = 0;
    for (const instance of this.#deps.pool.liveInstances()) {
      const status = instance.status;
      const stalledSince = instance.lastUsedAt;
      if (status.state !== 'busy' || now - stalledSince < after) continue;
      stuck++;
      if (this.#reported.get(instance) === stalledSince) continue;
      this.#reported.set(instance, stalledSince);
      this.#totals.stuckInstances++;
      const a = instance.agent;
      this.#emit({
        type: 'instance.stuck',
        at: now,
        project: a.project,
        agentId: a.id,
        name: a.name,
        instanceId: instance.id,
        busyMs: now - stalledSince,
        leases: status.leases,
      });
    }
    return stuck;
  }

  #processChecks(r: ProcessReading | undefined): HealthCheck[] {
    if (r === undefined) return [];
    const o = this.options;
    const heapLimit = Math.min(r.heapLimitBytes, o.memoryLimitBytes);
    return [
      check('event_loop_delay', r.eventLoopDelayMs, 'ms', o.eventLoopDelayMs),
      check('event_loop_utilization', r.eventLoopUtilization, 'ratio', o.eventLoopUtilization),
      {
        ...check('heap', heapLimit > 0 ? r.heapUsedBytes / heapLimit : 0, 'ratio', o.heapRatio),
        bytes: r.heapUsedBytes,
        limitBytes: heapLimit,
      },
      {
        ...check('rss', r.rssBytes / o.memoryLimitBytes, 'ratio', o.rssRatio),
        bytes: r.rssBytes,
        limitBytes: o.memoryLimitBytes,
      },
      check('cpu', r.cpuRatio, 'ratio', o.cpuRatio),
    ];
  }

  /** Evicts a share of the idle instances that may leave (at least one). */
  #shrink(now: number): void {
    const { pool } = this.#deps;
    const candidates = pool.shrinkable;
    if (candidates === 0) return;
    const evicted = pool.shrink(Math.max(1, Math.ceil(candidates * this.options.shrinkFraction)));
    if (evicted === 0) return;
    this.#totals.pressureEvictions += evicted;
    this.#emit({ type: 'pool.cache_shrunk', at: now, evicted, reason: 'memory' });
  }

  #emit(event: HealthEvent): void {
    if (this.#deps.bus.hasListeners(event.type)) this.#deps.bus.emit(event);
  }
}

/** A check's status: the highest level its value reached (a level of 0 is off). */
export function levelOf(value: number, threshold: ResolvedHealthThresholds): HealthStatus {
  if (threshold.overloaded > 0 && value >= threshold.overloaded) return 'overloaded';
  if (threshold.degraded > 0 && value >= threshold.degraded) return 'degraded';
  return 'ok';
}

function check(name: string, value: number, unit: string, threshold: ResolvedHealthThresholds): HealthCheck {
  return { name, status: levelOf(value, threshold), value: round(value), unit, threshold };
}

function summary(c: HealthCheck): HealthCheckSummary {
  return { name: c.name, status: c.status, value: c.value };
}

/** Four significant decimals: ratios and milliseconds read well, and JSON stays short. */
function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
