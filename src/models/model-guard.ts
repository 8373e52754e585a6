/**
 * The guard of one `provider/model-id` ("ref"), composed from cockatiel and our fair bulkhead and
 * shared by every caller of it. It wraps a call from the outside in:
 *   bulkhead (a call holds its slot until its stream ends; the queue takes projects in turn,
 *   fair-bulkhead.ts)
 *   → retries (exponential backoff with jitter; Retry-After / retry-after-ms honoured)
 *   → provider rate limits (requests and tokens per minute, on the injected clock; counted in this
 *   process or, for a cluster, in Redis: coordination/rate-limiter.ts)
 *   → circuit breaker → per-attempt timeout → one attempt: `doStream` until the first content part,
 * then replays what the attempt read ahead of the rest of the stream. This file owns the guard's
 * counters, its breaker events and the types it shares with `ModelGuards` (resilient-model.ts).
 */
import {
  APICallError,
  type LanguageModelV3,
  type LanguageModelV3CallOptions,
  type LanguageModelV3StreamPart,
} from '@ai-sdk/provider';
import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
  type RetryPolicy,
  SamplingBreaker,
  TaskCancelledError,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  isTaskCancelledError,
  retry,
} from 'cockatiel';
import type { ModelRateLimit, RateLimiter, RateRefusal } from '../coordination/rate-limiter.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import type { EventSink } from '../events/bus.ts';
import { BulkheadRejectedError, FairBulkhead, type Release } from './fair-bulkhead.ts';
import type { BreakerState, ModelEvent, ModelGuardStats, ModelObserver } from './model-events.ts';
import {
  describeFailure,
  isAbortError,
  isNetworkError,
  isRetryable,
  isSickness,
  retryAfterMs,
} from './provider-errors.ts';
import type {
  ResolvedBreakerOptions,
  ResolvedModelPolicy,
  ResolvedRetryOptions,
} from './resilience-options.ts';

type Part = LanguageModelV3StreamPart;

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

/** Parts a provider sends before any content: an attempt is not over until something else arrives. */
const PREAMBLE: ReadonlySet<Part['type']> = new Set(['stream-start', 'response-metadata', 'raw']);
const STATES: Readonly<Record<CircuitState, BreakerState>> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** What an attempt read before handing over: the preamble and first content part, and the rest to come. */
interface Opened {
  head: Part[];
  reader: ReadableStreamDefaultReader<Part>;
  /** Stops forwarding the caller's abort to the request; called when the stream ends. */
  unlink: () => void;
}

/** The policies and counters of one ref. */
export class ModelGuard {
  readonly ref: string;
  readonly policy: ResolvedModelPolicy;
  readonly #deps: Required<ModelGuardsDeps>;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #bulkhead: FairBulkhead;
  readonly #retry: RetryPolicy;
  /** The provider's requests and tokens per minute; undefined when the policy sets neither. */
  readonly #limit: ModelRateLimit | undefined;
  /** The provider's Retry-After of a classified failure, in ms. */
  readonly #retryAfter = new WeakMap<AgentPoolError, number>();
  #openedAt = 0;
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
    const { breaker: b, retry: r, rateLimit } = policy;
    this.#breaker = circuitBreaker(handleWhen(isSickness), {
      halfOpenAfter: b.halfOpenAfterMs,
      breaker: b.strategy === 'consecutive' ? new ConsecutiveBreaker(b.threshold) : sampledBreaker(b),
    });
    this.#breaker.onStateChange((state) => this.#breakerChanged(state));
    const { maxConcurrent, maxQueue, maxQueuePerProject } = policy.bulkhead;
    this.#bulkhead = new FairBulkhead({ maxConcurrent, maxQueue, maxQueuePerKey: maxQueuePerProject });
    this.#retry = retry(
      handleWhen((err) => isRetryable(err) && (this.#retryAfterOf(err) ?? 0) <= r.maxRetryAfterMs),
      { maxAttempts: r.maxAttempts - 1, backoff: backoff(r, (err) => this.#retryAfterOf(err)) },
    ).dangerouslyUnref(); // like the injected clock's timers: waiting never keeps the process alive
    this.#retry.onRetry(() => {
      this.retries++;
      deps.observer.retried(ref);
    });
    const limited = rateLimit.requestsPerMinute !== undefined || rateLimit.tokensPerMinute !== undefined;
    this.#limit = limited ? deps.rateLimiter.forModel(ref, rateLimit) : undefined;
  }

  /**
   * One call of `project`: resolves with the stream once the model sent its first content part.
   * The call waits for a bulkhead slot in its project's turn.
   */
  open(
    model: LanguageModelV3,
    call: LanguageModelV3CallOptions,
    project: string,
  ): Promise<ReadableStream<Part>> {
    this.calls++;
    const signal = call.abortSignal;
    const ready = Promise.withResolvers<ReadableStream<Part>>();
    // A free slot is taken without waiting for a promise: the happy path of every model call.
    const free = signal?.aborted === true ? undefined : this.#bulkhead.tryAcquire();
    const held =
      free !== undefined
        ? this.#hold(model, call, free, ready)
        : this.#bulkhead.acquire(project, signal).then((release) => this.#hold(model, call, release, ready));
    void held.catch((err: unknown) => {
      if (signal?.aborted) return ready.reject(signal.reason);
      this.failures++;
      if (err instanceof BulkheadRejectedError) err = this.#refuse(this.#busy(err));
      ready.reject(err);
    });
    return ready.promise;
  }

  /**
   * Makes the call with a bulkhead slot, and holds the slot until the stream ends (or the call is
   * cancelled, read or not): a streaming call keeps the provider busy.
   */
  async #hold(
    model: LanguageModelV3,
    call: LanguageModelV3CallOptions,
    release: Release,
    ready: PromiseWithResolvers<ReadableStream<Part>>,
  ): Promise<void> {
    const signal = call.abortSignal;
    try {
      // cockatiel's retry waits out its backoff even when cancelled; the slot must not.
      const opened = await untilAborted(
        this.#retry.execute(({ attempt }) => this.#attempt(model, call, attempt + 1), signal),
        signal,
        (late) => void late.reader.cancel().catch(() => undefined),
      );
      const ended = Promise.withResolvers<void>();
      const onAbort = (): void => ended.resolve();
      signal?.addEventListener('abort', onAbort, { once: true });
      ready.resolve(this.#relay(opened, ended.resolve));
      try {
        await ended.promise;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    } finally {
      release();
    }
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
      breaker: STATES[this.#breaker.state],
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

  async #attempt(model: LanguageModelV3, call: LanguageModelV3CallOptions, attempt: number): Promise<Opened> {
    call.abortSignal?.throwIfAborted();
    // Refusals happen before the breaker: they say nothing of the model's health, and must not
    // take (and so close) a half-open breaker's one trial call.
    const now = this.#deps.clock.now();
    const limit = this.#limit;
    if (limit !== undefined) {
      const taking = limit.take(now);
      const refusal = taking instanceof Promise ? await taking : taking;
      if (refusal !== undefined) throw this.#throttle(refusal);
    }
    // The request was counted when it was allowed; one the breaker stops is never sent.
    let sent = false;
    try {
      if (this.#breaker.state === CircuitState.HalfOpen) throw this.#unavailable();
      return await this.#breaker.execute(() => {
        sent = true;
        return this.#firstPart(model, call, attempt).catch((err: unknown) => {
          throw this.#failure(err, call.abortSignal, attempt);
        });
      });
    } catch (err) {
      throw isBrokenCircuitError(err) ? this.#unavailable() : err;
    } finally {
      if (!sent) limit?.refund(now);
    }
  }

  /**
   * Sends the request and reads until the first content part, within the attempt timeout; an
   * `error` part before it fails the attempt. One AbortController per attempt carries both the
   * caller's abort (for as long as the stream lives) and the timeout (until the first part). The
   * race makes the attempt fail on time even if a model ignores its abort signal.
   */
  async #firstPart(
    model: LanguageModelV3,
    call: LanguageModelV3CallOptions,
    attempt: number,
  ): Promise<Opened> {
    const ctrl = new AbortController();
    const outer = call.abortSignal;
    const forward = (): void => ctrl.abort(outer?.reason);
    outer?.addEventListener('abort', forward, { once: true });
    const unlink = (): void => outer?.removeEventListener('abort', forward);
    let timedOut = false;
    let timer: TimerHandle | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = this.#deps.clock.setTimeout(() => {
        timedOut = true;
        const err = new TaskCancelledError(`Operation timed out after ${this.policy.timeoutMs}ms`);
        ctrl.abort(err);
        reject(err);
      }, this.policy.timeoutMs);
    });
    const working = (async (): Promise<Opened> => {
      const { stream } = await model.doStream({ ...call, abortSignal: ctrl.signal });
      const reader = stream.getReader();
      const head: Part[] = [];
      try {
        for (;;) {
          const next = await reader.read();
          if (next.done) break;
          if (next.value.type === 'error')
            throw this.#failure(next.value.error, call.abortSignal, attempt, true);
          head.push(next.value);
          if (!PREAMBLE.has(next.value.type)) break;
        }
        // The timeout already failed this attempt: nobody will read what arrived late.
        if (timedOut) throw new TaskCancelledError();
      } catch (err) {
        reader.cancel(err).catch(() => undefined);
        throw err;
      }
      return { head, reader, unlink };
    })();
    try {
      return await Promise.race([working, expired]);
    } catch (err) {
      unlink();
      working.catch(() => undefined); // settled after losing the race: nobody waits for it
      throw err;
    } finally {
      timer?.cancel();
      expired.catch(() => undefined);
    }
  }

  /** The stream handed to the caller: what the attempt read, then the rest, tapping usage on the way. */
  #relay({ head, reader, unlink }: Opened, ended: () => void): ReadableStream<Part> {
    let open = true;
    const end = (): void => {
      if (open) {
        open = false;
        unlink();
        ended();
      }
    };
    return new ReadableStream<Part>(
      {
        pull: async (controller) => {
          try {
            let part = head.shift();
            if (part === undefined) {
              const next = await reader.read();
              if (next.done) {
                end();
                controller.close();
                return;
              }
              part = next.value;
            }
            if (part.type === 'finish') {
              const tokens = (part.usage.inputTokens.total ?? 0) + (part.usage.outputTokens.total ?? 0);
              this.#limit?.addTokens(tokens, this.#deps.clock.now());
            }
            controller.enqueue(part);
          } catch (err) {
            // After the first content part the caller has shown output: errors pass through, unretried.
            end();
            controller.error(err);
          }
        },
        cancel: async (reason) => {
          end();
          await reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
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

  #unavailable(): AgentPoolError {
    const halfOpen = this.#breaker.state === CircuitState.HalfOpen;
    const waitMs = halfOpen
      ? 0
      : this.#openedAt + this.policy.breaker.halfOpenAfterMs - this.#deps.clock.now();
    const retryAfterSeconds = Math.max(1, Math.ceil(waitMs / 1000));
    const last = describeFailure(this.#breaker.lastFailure);
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
    if (isTaskCancelledError(err) || isAbortError(err)) {
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
      this.#openedAt = at;
      const reason = describeFailure(this.#breaker.lastFailure);
      this.#deps.bus.emit({ type: 'breaker.opened', at, model, reason });
    } else if (state === CircuitState.HalfOpen) {
      this.#deps.bus.emit({ type: 'breaker.half_opened', at, model });
    } else if (state === CircuitState.Closed) {
      this.#deps.bus.emit({ type: 'breaker.closed', at, model });
    }
    this.#deps.observer.breakerChanged(model, STATES[state]);
  }
}

/**
 * Exponential backoff with "equal jitter" (half the step fixed, half random, so retries of many
 * callers spread out but none retries at once), unless the provider said how long to wait.
 */
function backoff(
  r: ResolvedRetryOptions,
  retryAfter: (err: unknown) => number | undefined,
): IBackoffFactory<IRetryBackoffContext<unknown>> {
  type Context = IRetryBackoffContext<unknown>;
  const step = (n: number, context: Context): IBackoff<Context> => {
    const told = 'error' in context.result ? retryAfter(context.result.error) : undefined;
    const cap = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** (n - 1));
    return { duration: told ?? cap / 2 + (Math.random() * cap) / 2, next: (c) => step(n + 1, c) };
  };
  return { next: (context) => step(1, context) };
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
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  late: (value: T) => void = () => undefined,
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
