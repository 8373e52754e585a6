/**
 * Options of retention (`AgentPoolOptions.retention`, the settings `retention.*`): how long runs,
 * their messages and threads are kept, and how the background sweep deletes what is older.
 */
import { intOption, objectOption } from '../core/options.ts';
import { MAX_RETENTION_DAYS } from '../governance/limits.ts';

/** How long data is kept and how it is swept. A project may keep its own `limits.retention.days`. */
export interface RetentionOptions {
  /** Runs and threads idle longer than this many days are deleted; 0 keeps everything. @default 30 */
  days?: number;
  /** Threads examined (and stateless runs deleted) per batch, 1..1000; each batch is one short transaction. @default 100 */
  batchSize?: number;
  /** How often a sweep starts, ms; 0 never sweeps. @default 600000 (10 minutes) */
  intervalMs?: number;
}

/** {@link RetentionOptions} with every default applied. */
export type ResolvedRetentionOptions = Required<RetentionOptions>;

/** Applies defaults and rejects unknown fields and bad values with a message naming the field (`retention.…`). */
export function resolveRetentionOptions(input: RetentionOptions = {}): ResolvedRetentionOptions {
  const o = objectOption('retention', input, ['days', 'batchSize', 'intervalMs']) as RetentionOptions;
  return {
    days: intOption('retention.days', o.days, 30, 0, MAX_RETENTION_DAYS),
    batchSize: intOption('retention.batchSize', o.batchSize, 100, 1, 1000),
    intervalMs: intOption('retention.intervalMs', o.intervalMs, 600_000, 0, 7 * 24 * 3_600_000),
  };
}
