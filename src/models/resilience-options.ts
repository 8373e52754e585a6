/**
 * Options of the resilience around model calls (breaker, retries, timeout, bulkhead, provider
 * rate limits), their defaults, and their validation in one step. Defaults apply to every
 * `provider/model-id`; `models` overrides them per ref, field by field.
 */
import { validationError } from '../core/errors.ts';
import { enumOption, intOption, objectOption } from '../core/options.ts';
import { parseModelRef } from './catalog.ts';

/** When a model's circuit breaker opens, and when it tries again. */
export interface BreakerOptions {
  /**
   * `consecutive`: opens after `threshold` failures in a row. `sampled`: opens when more than
   * `failureRatio` of the calls in the last `windowMs` failed, once at least `minimumCalls` were made.
   * @default 'consecutive'
   */
  strategy?: 'consecutive' | 'sampled';
  /** Consecutive failures that open it. @default 5 */
  threshold?: number;
  /** Sampled: the share of failed calls, strictly between 0 and 1, above which it opens. @default 0.5 */
  failureRatio?: number;
  /** Sampled: calls in the window before the ratio is trusted. @default 10 */
  minimumCalls?: number;
  /** Sampled: the window calls are counted over. @default 30000 */
  windowMs?: number;
  /** How long it stays open before letting one trial call through (half-open). @default 10000 */
  halfOpenAfterMs?: number;
}

/** Retries of retryable failures (429, 408, 5xx, timeouts, connection errors). */
export interface RetryOptions {
  /** Total attempts including the first; 1 disables retries. @default 3 */
  maxAttempts?: number;
  /** Backoff before the first retry; doubles each retry, with jitter. @default 250 */
  initialDelayMs?: number;
  /** The longest backoff between attempts. @default 10000 */
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the call fails (and can fall back). @default 30000 */
  maxRetryAfterMs?: number;
}

/**
 * Concurrency limit of one model, shared by every project: calls beyond it wait in a bounded
 * queue that serves the projects with waiting calls in turn, then are refused with MODEL_BUSY.
 */
export interface BulkheadOptions {
  /** Calls streaming at once (a call holds its slot until its stream ends). @default 64 */
  maxConcurrent?: number;
  /**
   * Calls waiting for a slot, all projects together; one more fails at once with MODEL_BUSY,
   * unless its project waits less than another (that one's newest call gives up its place).
   * @default 256
   */
  maxQueue?: number;
  /** Calls of one project waiting for a slot; at most `maxQueue`. @default maxQueue */
  maxQueuePerProject?: number;
}

/** The provider's limits for one model, enforced locally and shared by every caller of the ref. */
export interface RateLimitOptions {
  /** HTTP requests (attempts) per minute. @default unlimited */
  requestsPerMinute?: number;
  /** Input plus output tokens per minute. @default unlimited */
  tokensPerMinute?: number;
}

/** The resilience policy of one model. */
export interface ModelPolicyOptions {
  /** Per attempt, until the first streamed part arrives. @default 60000 */
  timeoutMs?: number;
  /** @default see {@link RetryOptions} */
  retry?: RetryOptions;
  /** @default see {@link BreakerOptions} */
  breaker?: BreakerOptions;
  /** @default see {@link BulkheadOptions} */
  bulkhead?: BulkheadOptions;
  /** @default unlimited */
  rateLimit?: RateLimitOptions;
}

/** Resilience of every model call: defaults for every ref, and overrides per ref. */
export interface ModelResilienceOptions extends ModelPolicyOptions {
  /** Overrides per `provider/model-id`, merged field by field over the defaults above. @default {} */
  models?: Record<string, ModelPolicyOptions>;
}

/** {@link BreakerOptions} with every default applied. */
export interface ResolvedBreakerOptions {
  readonly strategy: 'consecutive' | 'sampled';
  readonly threshold: number;
  readonly failureRatio: number;
  readonly minimumCalls: number;
  readonly windowMs: number;
  readonly halfOpenAfterMs: number;
}

/** {@link RetryOptions} with every default applied. */
export type ResolvedRetryOptions = Readonly<Required<RetryOptions>>;

/** {@link BulkheadOptions} with every default applied (`maxQueuePerProject` ≤ `maxQueue`). */
export type ResolvedBulkheadOptions = Readonly<Required<BulkheadOptions>>;

/** {@link RateLimitOptions}; `undefined` is unlimited. */
export interface ResolvedRateLimitOptions {
  readonly requestsPerMinute: number | undefined;
  readonly tokensPerMinute: number | undefined;
}

/** The fully defaulted policy of one model. */
export interface ResolvedModelPolicy {
  readonly timeoutMs: number;
  readonly retry: ResolvedRetryOptions;
  readonly breaker: ResolvedBreakerOptions;
  readonly bulkhead: ResolvedBulkheadOptions;
  readonly rateLimit: ResolvedRateLimitOptions;
}

/** {@link ModelResilienceOptions} resolved: the defaults, the per-ref policies, and a lookup. */
export interface ResolvedModelResilienceOptions {
  readonly defaults: ResolvedModelPolicy;
  readonly models: ReadonlyMap<string, ResolvedModelPolicy>;
  /** The policy of `ref`: its override when there is one, else the defaults. */
  policyFor(ref: string): ResolvedModelPolicy;
}

const BUILTIN: ResolvedModelPolicy = {
  timeoutMs: 60_000,
  retry: { maxAttempts: 3, initialDelayMs: 250, maxDelayMs: 10_000, maxRetryAfterMs: 30_000 },
  breaker: {
    strategy: 'consecutive',
    threshold: 5,
    failureRatio: 0.5,
    minimumCalls: 10,
    windowMs: 30_000,
    halfOpenAfterMs: 10_000,
  },
  bulkhead: { maxConcurrent: 64, maxQueue: 256, maxQueuePerProject: 256 },
  rateLimit: { requestsPerMinute: undefined, tokensPerMinute: undefined },
};

const POLICY_KEYS = ['timeoutMs', 'retry', 'breaker', 'bulkhead', 'rateLimit'] as const;

// The sampled breaker divides by the ratio's complement, so 0 and 1 are both meaningless.
function ratio(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw validationError(field, `must be a number greater than 0 and less than 1, got ${String(value)}`);
  }
  return value;
}

function optionalLimit(field: string, value: unknown, fallback: number | undefined): number | undefined {
  return value === undefined ? fallback : intOption(field, value, 1);
}

function resolvePolicy(prefix: string, input: unknown, base: ResolvedModelPolicy): ResolvedModelPolicy {
  const o = objectOption(prefix, input, POLICY_KEYS);
  const r = objectOption(`${prefix}.retry`, o['retry'], Object.keys(base.retry));
  const b = objectOption(`${prefix}.breaker`, o['breaker'], Object.keys(base.breaker));
  const h = objectOption(`${prefix}.bulkhead`, o['bulkhead'], Object.keys(base.bulkhead));
  const l = objectOption(`${prefix}.rateLimit`, o['rateLimit'], Object.keys(base.rateLimit));

  const initialDelayMs = intOption(
    `${prefix}.retry.initialDelayMs`,
    r['initialDelayMs'],
    base.retry.initialDelayMs,
    0,
  );
  const maxDelayMs = intOption(`${prefix}.retry.maxDelayMs`, r['maxDelayMs'], base.retry.maxDelayMs, 0);
  if (maxDelayMs < initialDelayMs) {
    throw validationError(
      `${prefix}.retry.maxDelayMs`,
      `must be at least retry.initialDelayMs (${initialDelayMs}), got ${maxDelayMs}`,
    );
  }
  return {
    timeoutMs: intOption(`${prefix}.timeoutMs`, o['timeoutMs'], base.timeoutMs),
    retry: {
      maxAttempts: intOption(`${prefix}.retry.maxAttempts`, r['maxAttempts'], base.retry.maxAttempts),
      initialDelayMs,
      maxDelayMs,
      maxRetryAfterMs: intOption(
        `${prefix}.retry.maxRetryAfterMs`,
        r['maxRetryAfterMs'],
        base.retry.maxRetryAfterMs,
        0,
      ),
    },
    breaker: {
      strategy: enumOption(
        `${prefix}.breaker.strategy`,
        b['strategy'],
        ['consecutive', 'sampled'],
        base.breaker.strategy,
      ),
      threshold: intOption(`${prefix}.breaker.threshold`, b['threshold'], base.breaker.threshold),
      failureRatio: ratio(`${prefix}.breaker.failureRatio`, b['failureRatio'], base.breaker.failureRatio),
      minimumCalls: intOption(`${prefix}.breaker.minimumCalls`, b['minimumCalls'], base.breaker.minimumCalls),
      // Shorter windows hold too few calls for a ratio to mean anything.
      windowMs: intOption(`${prefix}.breaker.windowMs`, b['windowMs'], base.breaker.windowMs, 100),
      halfOpenAfterMs: intOption(
        `${prefix}.breaker.halfOpenAfterMs`,
        b['halfOpenAfterMs'],
        base.breaker.halfOpenAfterMs,
      ),
    },
    bulkhead: resolveBulkhead(prefix, h, base.bulkhead),
    rateLimit: {
      requestsPerMinute: optionalLimit(
        `${prefix}.rateLimit.requestsPerMinute`,
        l['requestsPerMinute'],
        base.rateLimit.requestsPerMinute,
      ),
      tokensPerMinute: optionalLimit(
        `${prefix}.rateLimit.tokensPerMinute`,
        l['tokensPerMinute'],
        base.rateLimit.tokensPerMinute,
      ),
    },
  };
}

/**
 * The bulkhead of a policy over its base. `maxQueuePerProject` follows `maxQueue` unless set:
 * where the base's equals its `maxQueue` (no bound of its own), a `maxQueue` changed here carries
 * it along; a bound set on the base stays, never above this level's `maxQueue`.
 */
function resolveBulkhead(
  prefix: string,
  h: Record<string, unknown>,
  base: ResolvedBulkheadOptions,
): ResolvedBulkheadOptions {
  const maxQueue = intOption(`${prefix}.bulkhead.maxQueue`, h['maxQueue'], base.maxQueue, 0);
  const inherited = base.maxQueuePerProject === base.maxQueue ? maxQueue : base.maxQueuePerProject;
  const perProject = intOption(
    `${prefix}.bulkhead.maxQueuePerProject`,
    h['maxQueuePerProject'],
    Math.min(inherited, maxQueue),
    0,
  );
  if (perProject > maxQueue) {
    throw validationError(
      `${prefix}.bulkhead.maxQueuePerProject`,
      `must be at most bulkhead.maxQueue (${maxQueue}), got ${perProject}`,
    );
  }
  return {
    maxConcurrent: intOption(`${prefix}.bulkhead.maxConcurrent`, h['maxConcurrent'], base.maxConcurrent),
    maxQueue,
    maxQueuePerProject: perProject,
  };
}

/** Applies defaults, merges per-model overrides over them, and rejects bad values naming the field. */
export function resolveModelResilienceOptions(
  options: ModelResilienceOptions = {},
): ResolvedModelResilienceOptions {
  const top = objectOption('resilience', options, [...POLICY_KEYS, 'models']);
  const { models: overrides, ...policy } = top;
  const defaults = resolvePolicy('resilience', policy, BUILTIN);
  const models = new Map<string, ResolvedModelPolicy>();
  if (
    overrides !== undefined &&
    (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides))
  ) {
    throw validationError('resilience.models', 'must be an object of policies by "provider/model-id"');
  }
  for (const [ref, override] of Object.entries(overrides ?? {})) {
    const field = `resilience.models[${JSON.stringify(ref)}]`;
    parseModelRef(ref, field);
    models.set(ref, resolvePolicy(field, override, defaults));
  }
  return { defaults, models, policyFor: (ref) => models.get(ref) ?? defaults };
}
