/**
 * Provider rate limits shared by every node of a cluster, in Redis: per `provider/model-id`, the
 * requests and tokens of the last minute in the sliding-window hashes of sliding-window-lua.ts.
 * Checking and counting a request is one script, so two nodes cannot both take the last request
 * of a minute. Refunds and token counts are sent without waiting, in order (deliveries.ts); one
 * lost to an outage longer than the retries only makes the limit looser for a minute.
 */
import type { Redis } from 'ioredis';
import { type Logger, silentLogger } from '../../core/logger.ts';
import type { ModelRateLimit, RateLimiter, RateLimits, RateRefusal } from '../rate-limiter.ts';
import { Deliveries } from './deliveries.ts';
import { LuaScript } from './lua-script.ts';
import { SLIDING_WINDOW_LUA } from './sliding-window-lua.ts';

/**
 * Modes: take (requests, tokens / now, rpm, tpm; '' = no limit) answers {} or {limit, waitMs};
 * refund (requests / at); tokens (tokens / now, n).
 */
const RATE = new LuaScript(
  'the rate limit script',
  `${SLIDING_WINDOW_LUA}
local mode = ARGV[1]
if mode == 'take' then
  local now = tonumber(ARGV[2])
  local rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
  if tpm then
    local tokens = window_read(KEYS[2], now)
    if tokens.total >= tpm then return { 'tokens', string.format('%d', window_wait(tokens, now, tpm)) } end
  end
  if rpm then
    local requests = window_read(KEYS[1], now)
    if requests.total >= rpm then return { 'requests', string.format('%d', window_wait(requests, now, rpm)) } end
    window_add(KEYS[1], now, 1)
  end
  return {}
elseif mode == 'refund' then
  if redis.call('EXISTS', KEYS[1]) == 1 then window_add(KEYS[1], tonumber(ARGV[2]), -1) end
  return 'ok'
elseif mode == 'tokens' then
  window_add(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
  return 'ok'
end
return redis.error_reply('ERR unknown mode ' .. tostring(mode))
`,
);

/** What the limiter talks to. */
export interface RedisRateLimiterDeps {
  /** A command connection (connection.ts); the limiter does not close it. */
  redis: Redis;
  /** Prefix of every key. */
  prefix: string;
  /** @default silent */
  logger?: Logger;
}

/** One model's limits, counted in Redis. */
class RedisModelRateLimit implements ModelRateLimit {
  readonly #redis: Redis;
  readonly #deliveries: Deliveries;
  readonly #requests: string;
  readonly #tokens: string;
  readonly #rpm: string;
  readonly #tpm: string;
  readonly #limits: RateLimits;

  constructor(redis: Redis, deliveries: Deliveries, key: string, limits: RateLimits) {
    this.#redis = redis;
    this.#deliveries = deliveries;
    this.#requests = `${key}:requests`;
    this.#tokens = `${key}:tokens`;
    this.#limits = limits;
    this.#rpm = limits.requestsPerMinute === undefined ? '' : String(limits.requestsPerMinute);
    this.#tpm = limits.tokensPerMinute === undefined ? '' : String(limits.tokensPerMinute);
  }

  async take(now: number): Promise<RateRefusal | undefined> {
    // Counts an outage kept back go out with the next check, which needs Redis anyway.
    if (this.#deliveries.owed > 0) this.#deliveries.retry();
    const keys = [this.#requests, this.#tokens];
    const reply = (await RATE.run(this.#redis, keys, ['take', now, this.#rpm, this.#tpm])) as string[];
    const [limit, waitMs] = reply;
    if (limit === undefined) return undefined;
    const tokens = limit === 'tokens';
    const perMinute = (tokens ? this.#limits.tokensPerMinute : this.#limits.requestsPerMinute) ?? 0;
    return { limit: tokens ? 'tokens' : 'requests', perMinute, waitMs: Number(waitMs) };
  }

  refund(at: number): void {
    if (this.#rpm === '') return;
    this.#deliveries.send('a request refund', () => RATE.run(this.#redis, [this.#requests], ['refund', at]));
  }

  addTokens(tokens: number, now: number): void {
    if (this.#tpm === '' || !(tokens > 0)) return;
    const n = Math.ceil(tokens);
    this.#deliveries.send('a token count', () => RATE.run(this.#redis, [this.#tokens], ['tokens', now, n]));
  }
}

/** Provider rate limits counted once for every node sharing a Redis (and prefix). */
export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #deliveries: Deliveries;

  constructor(deps: RedisRateLimiterDeps) {
    this.#redis = deps.redis;
    this.#prefix = deps.prefix;
    this.#deliveries = new Deliveries((deps.logger ?? silentLogger()).child({ component: 'rate-limiter' }));
  }

  forModel(ref: string, limits: RateLimits): ModelRateLimit {
    return new RedisModelRateLimit(this.#redis, this.#deliveries, `${this.#prefix}rate:${ref}`, limits);
  }

  flush(): Promise<void> {
    return this.#deliveries.flush();
  }

  /** Resends once what Redis missed, then gives it up (a minute's counts are not worth more). */
  async close(): Promise<void> {
    this.#deliveries.retry();
    await this.#deliveries.flush();
    this.#deliveries.abandon();
  }
}
