/**
 * The rate limiter port: a provider's requests and tokens per minute for one `provider/model-id`,
 * checked by the model's guard (models/model-guard.ts) before each attempt. The local adapter
 * (local-rate-limiter.ts) counts this process's calls; the Redis adapter
 * (redis/rate-limiter.ts) counts every node's, since the provider's limit is on the account, not
 * on a node. Circuit breakers are not behind this port: they stay per node (docs/cluster.md).
 */
import type { MaybePromise } from './governance-ledger.ts';

/** A provider's limits for one model; undefined is unlimited. */
export interface RateLimits {
  readonly requestsPerMinute: number | undefined;
  readonly tokensPerMinute: number | undefined;
}

/** Why a call may not be made now, and when it may. */
export interface RateRefusal {
  readonly limit: 'requests' | 'tokens';
  /** The limit that was reached, per minute. */
  readonly perMinute: number;
  /** Milliseconds until the window falls below it. */
  readonly waitMs: number;
}

/** The limits of one model as its guard uses them. */
export interface ModelRateLimit {
  /**
   * Counts one request now, or answers why not (tokens checked first, then requests), counting
   * nothing. Exhausted means the sum has reached the limit.
   */
  take(now: number): MaybePromise<RateRefusal | undefined>;
  /** Takes back a request counted by {@link take} at `at` that was never sent (the breaker refused it). */
  refund(at: number): void;
  /** Counts the input and output tokens a call used. */
  addTokens(tokens: number, now: number): void;
}

/** Provider rate limits of every model. */
export interface RateLimiter {
  /** The limiter of `ref` with `limits` (at least one set); cheap, kept by the caller. */
  forModel(ref: string, limits: RateLimits): ModelRateLimit;
  /** Resolves once every count sent so far was applied (or given up on). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
