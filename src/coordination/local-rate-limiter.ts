/**
 * Provider rate limits counted in this process: two sliding windows per model on the injected
 * clock, owned by the model's guard (so they are dropped with it). Right for one node; a cluster
 * shares the counts in Redis (redis/rate-limiter.ts).
 */
import { SlidingWindow } from '../core/sliding-window.ts';
import type { ModelRateLimit, RateLimiter, RateLimits, RateRefusal } from './rate-limiter.ts';

/** The requests and tokens of one model in the last minute, in this process. */
class LocalModelRateLimit implements ModelRateLimit {
  readonly #requests: SlidingWindow | undefined;
  readonly #tokens: SlidingWindow | undefined;

  constructor(limits: RateLimits) {
    const { requestsPerMinute: rpm, tokensPerMinute: tpm } = limits;
    this.#requests = rpm === undefined ? undefined : new SlidingWindow(rpm);
    this.#tokens = tpm === undefined ? undefined : new SlidingWindow(tpm);
  }

  take(now: number): RateRefusal | undefined {
    const tokens = this.#tokens;
    if (tokens !== undefined && tokens.exhausted(now))
      return { limit: 'tokens', perMinute: tokens.limit, waitMs: tokens.waitMs(now) };
    const requests = this.#requests;
    if (requests === undefined) return undefined;
    if (requests.exhausted(now))
      return { limit: 'requests', perMinute: requests.limit, waitMs: requests.waitMs(now) };
    requests.add(now);
    return undefined;
  }

  refund(at: number): void {
    this.#requests?.add(at, -1);
  }

  addTokens(tokens: number, now: number): void {
    if (tokens > 0) this.#tokens?.add(now, tokens);
  }
}

/** Rate limits kept by each guard in this process. */
export class LocalRateLimiter implements RateLimiter {
  forModel(_ref: string, limits: RateLimits): ModelRateLimit {
    return new LocalModelRateLimit(limits);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
