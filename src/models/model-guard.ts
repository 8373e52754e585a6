/**
 * The guard of one `provider/model-id` ("ref"), shared by every caller of it. It wraps a call from
 * the outside in:
 *   bulkhead (a call holds its slot until its stream ends; the queue takes projects in turn,
 *   fair-bulkhead.ts)
 *   → retries (exponential backoff with jitter; Retry-After / retry-after-ms honoured)
 *   → provider rate limits (requests and tokens per minute, on the injected clock; counted in this
 *   process or, for a cluster, in Redis: coordination/rate-limiter.ts)
 *   → circuit breaker (circuit.ts) → one attempt with its timeout: `doStream` until the first
 *   content part, then a stream that replays what the attempt read ahead of the rest
 *   (model-stream.ts).
 * The layers are a loop and synchronous bookkeeping rather than nested policies: a call that finds
 * a free slot, a closed breaker and no limit costs one async function, one attempt object and the
 * model's own promises. This file owns the guard's counters, its breaker events, retry decisions
 * and the mapping of provider failures to AgentPoolErrors.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { APICallError, type LanguageModelV3, type LanguageModelV3CallOptions } from '@ai-sdk/provider';
import { CircuitState, ConsecutiveBreaker, SamplingBreaker } from 'cockatiel';
import type { ModelRateLimit, RateLimiter, RateRefusal } from '../coordination/rate-limiter.ts';
import type { Clock } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import type { EventSink } from '../events/bus.ts';
import { Circuit } from './circuit.ts';
import { BulkheadRejectedError, FairBulkhead, type Release } from './fair-bulkhead.ts';
import type { BreakerState, ModelEvent, ModelGuardStats, ModelObserver } from './model-events.ts';
import { type AttemptGuard, GuardedStream, type ModelStream } from './model-stream.ts';
import {
  describeFailure,
  isAbortError,
  isNetworkError,
  isRetryable,
  isSickness,
  retryAfterMs,
} from './provider-errors.ts';
import type { ResolvedBreakerOptions, ResolvedModelPolicy } from './resilience-options.ts';

/** What the guards need from the pool. */
export interface ModelGuardsDeps {
  clock: Clock;
  bus: EventSink<ModelEvent>;
  /** @default ignores everything */
  observer?: ModelObserver;
  /**
   * Where provider requests and tokens per minute are counted: a shared limiter (Redis) counts
   * every node's calls. @default this process only (LocalRateLimiter)
   */
  rateLimiter?: RateLimiter;
}

const STATES: Readonly<Record<CircuitState, BreakerState>> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};
/** Waiting out a backoff never keeps the process alive, like the injected clock's timers. */
const UNREF = { ref: false } as const;

/** The policies and counters of one ref. */
export class ModelGuard {
  readonly ref: string;
  readonly policy: ResolvedModelPolicy;
  readonly #deps: Required<ModelGuardsDeps>;
  readonly #circuit: Circuit;
  readonly #bulkhead: FairBulkhead;
  /** The provider's requests and tokens per minute; undefined when the policy sets neither. */
  readonly #limit: ModelRateLimit | undefined;
  /** What this guard's attempts share. */
  readonly #attempts: AttemptGuard;
  /** The provider's Retry-After of a classified failure, in ms. */
  readonly #retryAfter = new WeakMap<AgentPoolError, number>();
  calls = 0;
  failures = 0;
  retries = 0;
  fallbacks = 0;
  throttled = 0;
  rejected = 0;

  constructor(ref: string, policy: ResolvedModelPolicy, deps: Required<ModelGuardsDeps>) {
    this.ref = ref;
    this.policy = policy;
    this.#deps = deps;
    const { breaker: b, rateLimit } = policy;
    this.#circuit = new Circuit({
      strategy: b.strategy === 'consecutive' ? new ConsecutiveBreaker(b.threshold) : sampledBreaker(b),
      halfOpenAfterMs: b.halfOpenAfterMs,
      clock: deps.clock,
      counts: isSickness,
      onChange: (state) => this.#breakerChanged(state),
    });
    const { maxConcurrent, maxQueue, maxQueuePerProject } = policy.bulkhead;
    this.#bulkhead = new FairBulkhead({ maxConcurrent, maxQueue, maxQueuePerKey: maxQueuePerProject });
    const limited = rateLimit.requestsPerMinute !== undefined || rateLimit.tokensPerMinute !== undefined;
    this.#limit = limited ? deps.rateLimiter.forModel(ref, rateLimit) : undefined;
    this.#attempts = {
      clock: deps.clock,
      timeoutMs: policy.timeoutMs,
      circuit: this.#circuit,
      limit: this.#limit,
      failure: (err, signal, attempt, inBand) => this.#failure(err, signal, attempt, inBand),
    };
  }

  /**
   * One call of `project`: resolves with the stream once the model sent its first content part.
   * The call waits for a bulkhead slot in its project's turn.
   */
  open(model: LanguageModelV3, call: LanguageModelV3CallOptions, project: string): Promise<ModelStream> {
    this.calls++;
    const signal = call.abortSignal;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    // A free slot is taken without waiting for a promise: the happy path of every model call.
    const free = this.#bulkhead.tryAcquire();
    if (free !== undefined) return this.#call(model, call, free);
    return this.#bulkhead.acquire(project, signal).then(
      (release) => this.#call(model, call, release),
      (err: unknown) => {
        throw this.#failed(err, signal);
      },
    );
  }

  /**
   * Makes the call with a bulkhead slot: the first attempt, then, only if it fails, retries while
   * the failure is retryable and attempts are left. The stream holds the slot until it ends (or the
   * call is cancelled, read or not): a streaming call keeps the provider busy.
   */
  #call(model: LanguageModelV3, call: LanguageModelV3CallOptions, release: Release): Promise<ModelStream> {
    // No async frame on the way of a call answered at its first attempt: the retry loop is entered
    // only by a failure.
    return this.#attempt(model, call, 1, release).catch((err: unknown) =>
      this.#retry(err, model, call, release),
    );
  }

  /** Retries after `failed` (attempt 1 failed with it); gives the slot back when no attempt answers. */
  async #retry(
    failed: unknown,
    model: LanguageModelV3,
    call: LanguageModelV3CallOptions,
    release: Release,
  ): Promise<ModelStream> {
    const signal = call.abortSignal;
    let err = failed;
    try {
      for (let attempt = 1; ; attempt++) {
        if (signal?.aborted === true || attempt >= this.policy.retry.maxAttempts || !this.#retryable(err))
          throw err;
        this.retries++;
        this.#deps.observer.retried(this.ref);
        await sleep(this.#backoff(err, attempt), undefined, { ...UNREF, signal });
        try {
          return await this.#attempt(model, call, attempt + 1, release);
        } catch (next) {
          err = next;
        }
      }
    } catch (end) {
      release();
      throw this.#failed(end, signal);
    }
  }

  /** What a call that got no stream rejects with: the caller's abort reason, or its failure (counted). */
  #failed(err: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted === true) return signal.reason;
    this.failures++;
    return err instanceof BulkheadRejectedError ? this.#refuse(this.#busy(err)) : err;
  }

  /** Whether another attempt may fix `err`: a retryable failure whose Retry-After we are willing to wait. */
  #retryable(err: unknown): boolean {
    return isRetryable(err) && (this.#retryAfterOf(err) ?? 0) <= this.policy.retry.maxRetryAfterMs;
  }

  /**
   * The wait before retry number `retry` (from 1): what the provider said, else exponential backoff
   * with "equal jitter" (half the step fixed, half random, so retries of many callers spread out
   * but none retries at once).
   */
  #backoff(err: unknown, retry: number): number {
    const told = this.#retryAfterOf(err);
    if (told !== undefined) return told;
    const { initialDelayMs, maxDelayMs } = this.policy.retry;
    const cap = Math.min(maxDelayMs, initialDelayMs * 2 ** (retry - 1));
    return cap / 2 + (Math.random() * cap) / 2;
  }

  /**
   * One attempt: the provider's limits, then the breaker, then the request. Refusals happen before
   * the breaker: they say nothing of the model's health, and must not take (and so close) a
   * half-open breaker's one trial call.
   */
  #attempt(
    model: LanguageModelV3,
    call: LanguageModelV3CallOptions,
    attempt: number,
    release: Release,
  ): Promise<GuardedStream> {
    const limit = this.#limit;
    if (limit === undefined) return this.#send(model, call, attempt, release, undefined);
    return this.#limited(limit, model, call, attempt, release);
  }

  async #limited(
    limit: ModelRateLimit,
    model: LanguageModelV3,
    call: LanguageModelV3CallOptions,
    attempt: number,
    release: Release,
  ): Promise<GuardedStream> {
    call.abortSignal?.throwIfAborted();
    const now = this.#deps.clock.now();
    // The request is counted when it is allowed; one that is never sent is taken back.
    const unsent = (): void => limit.refund(now);
    const taking = limit.take(now);
    // A shared limiter answers later: a caller who aborts meanwhile leaves at once.
    const refusal =
      taking instanceof Promise
        ? await untilAborted(taking, call.abortSignal, (late) => late === undefined && unsent())
        : taking;
    if (refusal !== undefined) throw this.#throttle(refusal);
    return this.#send(model, call, attempt, release, unsent);
  }

  /**
   * The request, unless the caller aborted or the breaker refuses it (then `unsent` is told). The
   * stream it answers with holds the call's bulkhead slot (`release`).
   */
  #send(
    model: LanguageModelV3,
    call: LanguageModelV3CallOptions,
    attempt: number,
    release: Release,
    unsent: (() => void) | undefined,
  ): Promise<GuardedStream> {
    const signal = call.abortSignal;
    const admission = signal?.aborted === true ? undefined : this.#circuit.admit();
    if (admission === undefined) {
      unsent?.();
      return Promise.reject(signal?.aborted === true ? signal.reason : this.#unavailable());
    }
    return new GuardedStream(this.#attempts, signal, attempt, admission, release).open(model, call);
  }

  /** MODEL_BUSY for a call the bulkhead refused, saying which bound refused it. */
  #busy(err: BulkheadRejectedError): AgentPoolError {
    const { maxConcurrent, maxQueue, maxQueuePerProject } = this.policy.bulkhead;
    const project = err.key;
    const why =
      err.reason === 'key-full'
        ? `project ${project} already has ${maxQueuePerProject} calls waiting (maxQueuePerProject)`
        : err.reason === 'displaced'
          ? `its place in the full queue went to a project with fewer calls waiting`
          : `${maxConcurrent} calls in flight and ${maxQueue} waiting`;
    return new AgentPoolError('MODEL_BUSY', `${this.ref} is busy: ${why}`, {
      model: this.ref,
      project,
      reason: err.reason,
    });
  }

  stats(): ModelGuardStats {
    return {
      model: this.ref,
      breaker: STATES[this.#circuit.state],
      inFlight: this.#bulkhead.inFlight,
      queued: this.#bulkhead.queued,
      calls: this.calls,
      failures: this.failures,
      retries: this.retries,
      fallbacks: this.fallbacks,
      throttled: this.throttled,
      rejected: this.rejected,
    };
  }

  /** RATE_LIMITED for an attempt a provider limit of this ref refused. */
  #throttle({ limit, perMinute, waitMs }: RateRefusal): AgentPoolError {
    this.throttled++;
    this.#deps.observer.throttled(this.ref, limit);
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
    return this.#refuse(
      new AgentPoolError(
        'RATE_LIMITED',
        `${this.ref} reached its provider limit of ${perMinute} ${limit} per minute; retry in ${retryAfterSeconds}s`,
        { model: this.ref, scope: 'provider', limit, retryAfterSeconds },
      ),
    );
  }

  /** MODEL_UNAVAILABLE for an attempt the breaker refused. */
  #unavailable(): AgentPoolError {
    const halfOpen = this.#circuit.state === CircuitState.HalfOpen;
    const retryAfterSeconds = Math.max(1, Math.ceil(this.#circuit.waitMs / 1000));
    const last = describeFailure(this.#circuit.lastFailure);
    return this.#refuse(
      new AgentPoolError(
        'MODEL_UNAVAILABLE',
        `${this.ref} is unavailable: its circuit breaker is ${halfOpen ? 'half-open, trying one call' : 'open'} ` +
          `after repeated failures (last: ${last.message}); retry in ${retryAfterSeconds}s`,
        { model: this.ref, retryAfterSeconds },
      ),
    );
  }

  #refuse(err: AgentPoolError): AgentPoolError {
    this.rejected++;
    this.#deps.observer.rejected(this.ref, err.code);
    return err;
  }

  /** Maps what an attempt threw to an AgentPoolError (or the caller's abort reason, untouched). */
  #failure(err: unknown, signal: AbortSignal | undefined, attempts: number, inBand = false): unknown {
    if (signal?.aborted) return signal.reason;
    if (isAgentPoolError(err)) return err;
    const model = this.ref;
    if (isAbortError(err)) {
      const { timeoutMs } = this.policy;
      return new AgentPoolError(
        'MODEL_TIMEOUT',
        `${model} sent nothing within ${timeoutMs} ms`,
        { model, timeoutMs, attempts },
        { cause: err },
      );
    }
    const api = APICallError.isInstance(err) ? err : undefined;
    const status = api?.statusCode;
    const waitMs = retryAfterMs(api?.responseHeaders, this.#deps.clock.now());
    const retryAfter =
      waitMs === undefined ? {} : { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    const message = err instanceof Error ? err.message : String(err);
    const error =
      status === 429
        ? new AgentPoolError(
            'RATE_LIMITED',
            `${model} is rate limited by its provider: ${message}`,
            { model, scope: 'provider-response', attempts, ...retryAfter },
            { cause: err },
          )
        : new AgentPoolError(
            'MODEL_CALL_FAILED',
            `the call to ${model} failed${status === undefined ? '' : ` with HTTP ${status}`}: ${message}`,
            {
              model,
              ...(status !== undefined && { providerStatus: status }),
              attempts,
              // An in-band error part comes after a 200: the request was fine, the provider failed it.
              retryable:
                status !== undefined
                  ? status === 408 || status >= 500
                  : inBand || api?.isRetryable === true || isNetworkError(err),
              ...retryAfter,
            },
            { cause: err },
          );
    if (waitMs !== undefined) this.#retryAfter.set(error, waitMs);
    return error;
  }

  #retryAfterOf(err: unknown): number | undefined {
    return err instanceof AgentPoolError ? this.#retryAfter.get(err) : undefined;
  }

  #breakerChanged(state: CircuitState): void {
    const at = this.#deps.clock.now();
    const model = this.ref;
    if (state === CircuitState.Open) {
      const reason = describeFailure(this.#circuit.lastFailure);
      this.#deps.bus.emit({ type: 'breaker.opened', at, model, reason });
    } else if (state === CircuitState.HalfOpen) {
      this.#deps.bus.emit({ type: 'breaker.half_opened', at, model });
    } else if (state === CircuitState.Closed) {
      this.#deps.bus.emit({ type: 'breaker.closed', at, model });
    }
    this.#deps.observer.breakerChanged(model, STATES[state]);
  }
}

/** cockatiel's sampling breaker, with "at least `minimumCalls` calls in the window" expressed as its minimum rate. */
function sampledBreaker(b: ResolvedBreakerOptions): SamplingBreaker {
  // It splits the window into ≥ 5 slices of whole milliseconds and compares
  // `calls < duration × minimumRps / 1000`; half a call of slack keeps float error out of it.
  const slices = Math.max(5, Math.ceil(b.windowMs / 1000));
  const duration = Math.round(b.windowMs / slices) * slices;
  return new SamplingBreaker({
    threshold: b.failureRatio,
    duration: b.windowMs,
    minimumRps: ((b.minimumCalls - 0.5) * 1000) / duration,
  });
}

/** `promise`, or the abort reason as soon as `signal` aborts; a value that arrives too late goes to `late`. */
function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  late: (value: T) => void,
): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) late(value);
        else resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
