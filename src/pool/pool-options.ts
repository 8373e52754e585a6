/**
 * Options of the instance pool, their defaults, and their validation in one step.
 */
import { enumOption, intOption } from '../core/options.ts';
import { type HealthOptions, type ResolvedHealthOptions, resolveHealthOptions } from './health-options.ts';
import {
  type AutoscalingOptions,
  type ResolvedAutoscalingOptions,
  resolveAutoscalingOptions,
} from './autoscaler-options.ts';
import {
  type CheckpointOptions,
  type ResolvedCheckpointOptions,
  resolveCheckpointOptions,
} from './checkpoint-options.ts';
import { type ResolvedTierOptions, resolveTierOptions, type TierOptions } from './tier-options.ts';
import { POLICY_NAMES } from './policies/create-policy.ts';
import type { PolicyName } from './policies/policy.ts';
import {
  type RecoveryOptions,
  type ResolvedRecoveryOptions,
  resolveRecoveryOptions,
} from './recovery-options.ts';
import {
  type PreloadOptions,
  type ResolvedPreloadOptions,
  resolvePreloadOptions,
} from './preload-options.ts';

/** How the pool bounds and ages its instances. */
export interface InstancePoolOptions {
  /** Live instances at most (resident, one-shot and activating). @default 1000 */
  maxActive?: number;
  /** Estimated bytes of resident instances at most. @default 268435456 (256 MiB) */
  maxBytes?: number;
  /** Eviction policy. @default 'tinylfu' */
  policy?: PolicyName;
  /** How long `acquire` waits for room when every instance is busy. @default 30000 */
  acquireTimeoutMs?: number;
  /** Acquirers that may wait at once; more fail at once with `POOL_SATURATED`. @default 10000 */
  maxWaiting?: number;
  /** An unpinned, ready instance unused this long is deactivated; 0 never. @default 600000 (10 min) */
  maxIdleMs?: number;
  /** How often idle instances are looked for. @default maxIdleMs / 4, within 1 s … 60 s */
  idleSweepIntervalMs?: number;
  /** Failure recovery: failures counted per agent, restart → recover → migrate → escalate. @default {} */
  recovery?: RecoveryOptions;
  /** Preloading idle capacity by usage and prefetching followers (preload-options.ts). @default {} */
  preload?: PreloadOptions;
  /** The health monitor: timeouts, stuck instances, process thresholds, load shedding (health-options.ts). @default {} */
  health?: HealthOptions;
  /** The working-set checkpoint and the prewarm at start (pool/checkpoint.ts). @default {} */
  checkpoint?: CheckpointOptions;
  /** Capacity that follows load and memory (pool/autoscaler.ts). @default { enabled: false } */
  autoscaling?: AutoscalingOptions;
  /** Classification of `auto` agents from traffic, and per-tier limits (pool/tiers.ts). @default {} */
  tiers?: TierOptions;
}

/** {@link InstancePoolOptions} with every default applied. */
export type ResolvedInstancePoolOptions = Required<
  Omit<InstancePoolOptions, 'recovery' | 'preload' | 'health' | 'checkpoint' | 'autoscaling' | 'tiers'>
> & {
  recovery: ResolvedRecoveryOptions;
  preload: ResolvedPreloadOptions;
  health: ResolvedHealthOptions;
  tiers: ResolvedTierOptions;
  checkpoint: ResolvedCheckpointOptions;
  autoscaling: ResolvedAutoscalingOptions;
};

/** Applies defaults and rejects bad values with a message naming the field. */
export function resolveInstancePoolOptions(input: InstancePoolOptions = {}): ResolvedInstancePoolOptions {
  const maxIdleMs = intOption('pool.maxIdleMs', input.maxIdleMs, 600_000, 0);
  const maxActive = intOption('pool.maxActive', input.maxActive, 1000);
  return {
    maxActive,
    maxBytes: intOption('pool.maxBytes', input.maxBytes, 256 * 2 ** 20),
    policy: enumOption('pool.policy', input.policy, POLICY_NAMES, 'tinylfu'),
    acquireTimeoutMs: intOption('pool.acquireTimeoutMs', input.acquireTimeoutMs, 30_000, 0),
    maxWaiting: intOption('pool.maxWaiting', input.maxWaiting, 10_000, 0),
    maxIdleMs,
    idleSweepIntervalMs: intOption(
      'pool.idleSweepIntervalMs',
      input.idleSweepIntervalMs,
      Math.min(60_000, Math.max(1000, Math.floor(maxIdleMs / 4))),
    ),
    recovery: resolveRecoveryOptions(input.recovery),
    preload: resolvePreloadOptions(input.preload),
    health: resolveHealthOptions(input.health),
    checkpoint: resolveCheckpointOptions(input.checkpoint),
    autoscaling: resolveAutoscalingOptions(input.autoscaling, maxActive),
    tiers: resolveTierOptions(input.tiers),
  };
}
