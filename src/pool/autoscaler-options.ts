/**
 * Options of the autoscaler (pool/autoscaler.ts), their defaults, and their validation. The
 * defaults of the bounds depend on `pool.maxActive`, the capacity the pool starts with.
 */
import { boolOption, intOption, numberOption, objectOption } from '../core/options.ts';
import { validationError } from '../core/errors.ts';

/** How the live set's capacity follows load and memory. */
export interface AutoscalingOptions {
  /** Let the autoscaler change the pool's capacity. @default false */
  enabled?: boolean;
  /** Capacity at least. @default ceil(pool.maxActive / 4) */
  minActive?: number;
  /** Capacity at most. @default 4 × pool.maxActive */
  maxActive?: number;
  /** Grow when busy / capacity reaches this. @default 0.8 */
  scaleUpThreshold?: number;
  /** Shrink when busy / capacity is at most this, nobody waits and nothing was evicted. @default 0.3 */
  scaleDownThreshold?: number;
  /**
   * After any change, how long before the capacity may shrink, and after a shrink, how long
   * before it may grow again (growth follows growth at once; memory pressure shrinks at once).
   * @default 300000 (5 min)
   */
  cooldownMs?: number;
  /** How often load and memory are read and a decision taken, ms. @default 10000 */
  intervalMs?: number;
  /** Share of the capacity added or removed by one decision (at least one instance). @default 0.25 */
  stepRatio?: number;
  /**
   * Heap the pool may grow into, bytes: at 90% of it the capacity stops growing; above it, it
   * shrinks at once. 0: 80% of V8's heap limit (`--max-old-space-size`). @default 0
   */
  memoryLimitBytes?: number;
  /**
   * An interval whose activations took this long on average (ms) while evicting counts as
   * churn worth more room: the capacity grows even below `scaleUpThreshold`. @default 50
   */
  slowActivationMs?: number;
}

/** {@link AutoscalingOptions} with every default applied. */
export type ResolvedAutoscalingOptions = Required<AutoscalingOptions>;

const FIELDS = [
  'enabled',
  'minActive',
  'maxActive',
  'scaleUpThreshold',
  'scaleDownThreshold',
  'cooldownMs',
  'intervalMs',
  'stepRatio',
  'memoryLimitBytes',
  'slowActivationMs',
];

/**
 * Applies defaults (the bounds' from `poolMaxActive`) and rejects bad values naming the field
 * (`pool.autoscaling.minActive`).
 */
export function resolveAutoscalingOptions(
  input: unknown,
  poolMaxActive: number,
  field = 'pool.autoscaling',
): ResolvedAutoscalingOptions {
  const given = objectOption(field, input, FIELDS);
  const minActive = intOption(`${field}.minActive`, given['minActive'], Math.ceil(poolMaxActive / 4));
  const maxActive = intOption(
    `${field}.maxActive`,
    given['maxActive'],
    Math.max(minActive, 4 * poolMaxActive),
  );
  if (maxActive < minActive) {
    throw validationError(`${field}.maxActive`, `must be ≥ minActive (${minActive}), got ${maxActive}`);
  }
  const scaleUpThreshold = numberOption(`${field}.scaleUpThreshold`, given['scaleUpThreshold'], 0.8, 0.01, 1);
  const scaleDownThreshold = numberOption(
    `${field}.scaleDownThreshold`,
    given['scaleDownThreshold'],
    0.3,
    0,
    1,
  );
  if (scaleDownThreshold >= scaleUpThreshold) {
    throw validationError(
      `${field}.scaleDownThreshold`,
      `must be below scaleUpThreshold (${scaleUpThreshold}), got ${scaleDownThreshold}`,
    );
  }
  return {
    enabled: boolOption(`${field}.enabled`, given['enabled'], false),
    minActive,
    maxActive,
    scaleUpThreshold,
    scaleDownThreshold,
    cooldownMs: intOption(`${field}.cooldownMs`, given['cooldownMs'], 300_000, 0),
    intervalMs: intOption(`${field}.intervalMs`, given['intervalMs'], 10_000, 100),
    stepRatio: numberOption(`${field}.stepRatio`, given['stepRatio'], 0.25, 0.01, 1),
    memoryLimitBytes: intOption(`${field}.memoryLimitBytes`, given['memoryLimitBytes'], 0, 0),
    slowActivationMs: numberOption(`${field}.slowActivationMs`, given['slowActivationMs'], 50, 0, 3_600_000),
  };
}
