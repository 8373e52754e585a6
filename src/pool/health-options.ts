/**
 * Options of the health monitor (`pool.health`), their defaults, and their validation in one step.
 * Each process check has two thresholds: at `degraded` the node says so (and, for memory, shrinks
 * its activation cache), at `overloaded` it sheds load (new runs get 503 `OVERLOADED`). A
 * threshold of 0 turns that level of that check off.
 */
import { constrainedMemory } from 'node:process';
import { totalmem } from 'node:os';
import { validationError } from '../core/errors.ts';
import type { HealthReadings } from './process-readings.ts';
import { boolOption, intOption, numberOption, objectOption } from '../core/options.ts';

/** The two levels of one check. */
export interface HealthThresholds {
  /** At or above it the check, and the node, is `degraded`; 0 never. */
  degraded?: number;
  /** At or above it the check is `overloaded` and the node sheds new runs; 0 never. */
  overloaded?: number;
}

/** {@link HealthThresholds} with both levels set (0: off). */
export interface ResolvedHealthThresholds {
  readonly degraded: number;
  readonly overloaded: number;
}

/** How the node watches its activations, instances, runs and its own process. */
export interface HealthOptions {
  /** Runs the periodic check at all. @default true */
  enabled?: boolean;
  /** How often the check runs (ms); timeouts are enforced with this granularity. @default 10000 */
  intervalMs?: number;
  /**
   * An activation running longer (store read and model and tool resolution, not the wait for room)
   * fails with `ACTIVATION_TIMEOUT` and frees its place in the pool; 0 never. @default 30000
   */
  activationTimeoutMs?: number;
  /**
   * A busy instance whose leases have not moved (none granted, none given back) for this long is
   * reported stuck (`instance.stuck`); 0 never. @default 300000 (5 min)
   */
  stuckAfterMs?: number;
  /**
   * The memory the process may use: RSS is measured against it, the heap against it or V8's heap
   * limit, whichever is lower. @default the cgroup limit of the container, else the machine's memory
   */
  memoryLimitBytes?: number;
  /** p99 event-loop delay over the last interval (ms). @default { degraded: 200, overloaded: 1000 } */
  eventLoopDelayMs?: HealthThresholds;
  /** Event-loop utilisation over the last interval (0..1). @default { degraded: 0.9, overloaded: 0 } */
  eventLoopUtilization?: HealthThresholds;
  /** Heap used / heap limit (0..1). @default { degraded: 0.85, overloaded: 0.95 } */
  heapRatio?: HealthThresholds;
  /** RSS / memoryLimitBytes (0..1). @default { degraded: 0.85, overloaded: 0.95 } */
  rssRatio?: HealthThresholds;
  /** CPU time over the last interval / (wall time × cores) (0..1). @default { degraded: 0.9, overloaded: 0 } */
  cpuRatio?: HealthThresholds;
  /**
   * Under memory pressure (heap or RSS degraded or worse), the share of the idle, unpinned, not-hot
   * residents evicted at each check (at least one). @default 0.25
   */
  shrinkFraction?: number;
  /** The `Retry-After` of an `OVERLOADED` refusal (s). @default intervalMs in seconds, rounded up */
  retryAfterSeconds?: number;
  /**
   * Where process readings come from, for tests and embedders with their own figures; not a
   * setting (the config file cannot hold it). @default this process's (perf_hooks, process)
   */
  readings?: HealthReadings;
}

/** {@link HealthOptions} with every default applied. */
export interface ResolvedHealthOptions {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly activationTimeoutMs: number;
  readonly stuckAfterMs: number;
  readonly memoryLimitBytes: number;
  readonly eventLoopDelayMs: ResolvedHealthThresholds;
  readonly eventLoopUtilization: ResolvedHealthThresholds;
  readonly heapRatio: ResolvedHealthThresholds;
  readonly rssRatio: ResolvedHealthThresholds;
  readonly cpuRatio: ResolvedHealthThresholds;
  readonly shrinkFraction: number;
  readonly retryAfterSeconds: number;
}

const FIELDS = [
  'enabled',
  'intervalMs',
  'activationTimeoutMs',
  'stuckAfterMs',
  'memoryLimitBytes',
  'eventLoopDelayMs',
  'eventLoopUtilization',
  'heapRatio',
  'rssRatio',
  'cpuRatio',
  'shrinkFraction',
  'retryAfterSeconds',
  // Not an option but an injection point (HealthReadings); the pool takes it from here.
  'readings',
] as const;

/** The memory a process here may use: its container's limit when it has one, else the machine's. */
export function defaultMemoryLimit(): number {
  const constrained = constrainedMemory();
  // Without a limit Node reports 0 or an absurd maximum (2^64-ish); the machine's memory is then the bound.
  const machine = totalmem();
  return constrained > 0 && constrained < machine ? constrained : machine;
}

function thresholds(
  field: string,
  value: unknown,
  fallback: ResolvedHealthThresholds,
  max: number,
): ResolvedHealthThresholds {
  const given = objectOption(field, value, ['degraded', 'overloaded']);
  const degraded = numberOption(`${field}.degraded`, given['degraded'], fallback.degraded, 0, max);
  const overloaded = numberOption(`${field}.overloaded`, given['overloaded'], fallback.overloaded, 0, max);
  if (degraded > 0 && overloaded > 0 && overloaded < degraded) {
    throw validationError(
      `${field}.overloaded`,
      `must be at least ${field}.degraded (${degraded}), got ${overloaded}`,
    );
  }
  return { degraded, overloaded };
}

/** Applies defaults and rejects bad values with a message naming the field (`pool.health.…`). */
export function resolveHealthOptions(input: HealthOptions = {}): ResolvedHealthOptions {
  const given = objectOption('pool.health', input, FIELDS) as HealthOptions;
  const intervalMs = intOption('pool.health.intervalMs', given.intervalMs, 10_000, 100);
  return {
    enabled: boolOption('pool.health.enabled', given.enabled, true),
    intervalMs,
    activationTimeoutMs: intOption('pool.health.activationTimeoutMs', given.activationTimeoutMs, 30_000, 0),
    stuckAfterMs: intOption('pool.health.stuckAfterMs', given.stuckAfterMs, 300_000, 0),
    memoryLimitBytes: intOption('pool.health.memoryLimitBytes', given.memoryLimitBytes, defaultMemoryLimit()),
    eventLoopDelayMs: thresholds(
      'pool.health.eventLoopDelayMs',
      given.eventLoopDelayMs,
      { degraded: 200, overloaded: 1000 },
      3_600_000,
    ),
    eventLoopUtilization: thresholds(
      'pool.health.eventLoopUtilization',
      given.eventLoopUtilization,
      { degraded: 0.9, overloaded: 0 },
      1,
    ),
    heapRatio: thresholds('pool.health.heapRatio', given.heapRatio, { degraded: 0.85, overloaded: 0.95 }, 1),
    rssRatio: thresholds('pool.health.rssRatio', given.rssRatio, { degraded: 0.85, overloaded: 0.95 }, 1),
    cpuRatio: thresholds('pool.health.cpuRatio', given.cpuRatio, { degraded: 0.9, overloaded: 0 }, 1),
    shrinkFraction: numberOption('pool.health.shrinkFraction', given.shrinkFraction, 0.25, 0, 1),
    retryAfterSeconds: intOption(
      'pool.health.retryAfterSeconds',
      given.retryAfterSeconds,
      Math.ceil(intervalMs / 1000),
      1,
      3600,
    ),
  };
}
