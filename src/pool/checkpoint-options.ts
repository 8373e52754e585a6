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
   * ready; 0 saves without prewarming. At most `pool.maxActive − 1` are activated.
   * @default 100
   */
  warmupCount?: number;
  /** Activations at once while prewarming. @default 4 */
  warmupConcurrency?: number;
}

/** {@link CheckpointOptions} with every default applied. */
export type ResolvedCheckpointOptions = Required<CheckpointOptions>;

const FIELDS = ['enabled', 'intervalMs', 'warmupCount', 'warmupConcurrency'];

/** Applies defaults and rejects bad values naming the field (`pool.checkpoint.intervalMs`). */
export function resolveCheckpointOptions(
  input: unknown = {},
  field = 'pool.checkpoint',
): ResolvedCheckpointOptions {
  const given = objectOption(field, input, FIELDS);
  return {
    enabled: boolOption(`${field}.enabled`, given['enabled'], true),
    intervalMs: intOption(`${field}.intervalMs`, given['intervalMs'], 60_000, 1000),
    warmupCount: intOption(`${field}.warmupCount`, given['warmupCount'], 100, 0),
    warmupConcurrency: intOption(`${field}.warmupConcurrency`, given['warmupConcurrency'], 4, 1, 64),
  };
}
