/**
 * Options of the working-set checkpoint (pool/checkpoint.ts), their defaults, and their validation.
 */
import { boolOption, intOption, objectOption } from '../core/options.ts';

/** How a node checkpoints its working set and prewarms it at start. */
export interface CheckpointOptions {
  /** Save the working set and prewarm it at start. @default true */
  enabled?: boolean;
  /** How often the working set is saved to the store, ms (and once more at shutdown). @default 60000 */
  intervalMs?: number;
  /**
   * Agents of the last checkpoint activated at start, most valuable first, before `/readyz` says
   * ready; 0 saves without prewarming. At most the pool's capacity − 1 are activated.
   * @default 1000 (the whole checkpoint of a pool of the default size)
   */
  warmupCount?: number;
  /**
   * Longest the prewarm holds readiness back, ms: past it `/readyz` says ready and the prewarm
   * goes on in the background. @default 60000
   */
  warmupTimeoutMs?: number;
  /** Activations at once while prewarming. @default 4 */
  warmupConcurrency?: number;
}

/** {@link CheckpointOptions} with every default applied. */
export type ResolvedCheckpointOptions = Required<CheckpointOptions>;

const FIELDS = ['enabled', 'intervalMs', 'warmupCount', 'warmupTimeoutMs', 'warmupConcurrency'];

/** Applies defaults and rejects bad values naming the field (`pool.checkpoint.intervalMs`). */
export function resolveCheckpointOptions(
  input: unknown = {},
  field = 'pool.checkpoint',
): ResolvedCheckpointOptions {
  const given = objectOption(field, input, FIELDS);
  return {
    enabled: boolOption(`${field}.enabled`, given['enabled'], true),
    intervalMs: intOption(`${field}.intervalMs`, given['intervalMs'], 60_000, 1000),
    warmupCount: intOption(`${field}.warmupCount`, given['warmupCount'], 1000, 0),
    warmupTimeoutMs: intOption(`${field}.warmupTimeoutMs`, given['warmupTimeoutMs'], 60_000, 0),
    warmupConcurrency: intOption(`${field}.warmupConcurrency`, given['warmupConcurrency'], 4, 1, 64),
  };
}
