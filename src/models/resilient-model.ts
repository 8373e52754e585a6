/**
 * Resilience around every model call: `ModelGuards` keeps one guard per `provider/model-id` ("ref")
 * — circuit breaker, retries, timeout, bulkhead and provider limits, in model-guard.ts — and
 * `stream()` walks a route of fallbacks on top of them. How provider failures map to AgentPoolError
 * codes lives in provider-errors.ts. This file owns the public API of the model layer's resilience.
 */
import type { LanguageModelV3, LanguageModelV3CallOptions } from '@ai-sdk/provider';
import { LocalRateLimiter } from '../coordination/local-rate-limiter.ts';
import { isAgentPoolError, validationError } from '../core/errors.ts';
import { OldestKey } from '../core/oldest-key.ts';
import type { ModelGuardStats, ModelObserver, UsageExceededCap } from './model-events.ts';
import { ModelGuard, type ModelGuardsDeps } from './model-guard.ts';
import type { ModelStream } from './model-stream.ts';
import { canFallBack } from './provider-errors.ts';
import {
  type ModelResilienceOptions,
  type ResolvedModelResilienceOptions,
  resolveModelResilienceOptions,
} from './resilience-options.ts';

export type {
  BreakerState,
  ModelEvent,
  ModelGuardStats,
  ModelObserver,
  UsageExceededCap,
} from './model-events.ts';
export type { ModelGuardsDeps } from './model-guard.ts';
export type { ModelStream, ModelStreamReader, PartSink } from './model-stream.ts';

/** One model of a route: its ref (the guard it goes through) and the provider model. */
export interface ModelTarget {
  readonly ref: string;
  readonly model: LanguageModelV3;
}

/** Who a call is for; carried by `model.fallback` events. */
export interface ModelCallContext {
  project: string;
  agent: string;
  runId: string;
}

/** Refs whose guards are kept; the least recently used beyond it are dropped. */
const MAX_GUARDS = 10_000;
const IGNORE: ModelObserver = {
  retried: () => undefined,
  throttled: () => undefined,
  rejected: () => undefined,
  breakerChanged: () => undefined,
  fallback: () => undefined,
  usageExceededCap: () => undefined,
};

/** Circuit breakers, retries, timeouts, bulkheads and provider limits of every model, and fallbacks between them. */
export class ModelGuards {
  /** The options in force, with defaults applied. */
  readonly options: ResolvedModelResilienceOptions;
  readonly #deps: Required<ModelGuardsDeps>;
  // Insertion order doubles as recency order: a use re-inserts, the first key is the oldest.
  readonly #guards = new Map<string, ModelGuard>();
  readonly #oldestGuard = new OldestKey(this.#guards);
  /** The ref used last: already the newest key of #guards. */
  #newest: string | undefined;

  constructor(options: ModelResilienceOptions | undefined, deps: ModelGuardsDeps) {
    this.options = resolveModelResilienceOptions(options);
    this.#deps = {
      ...deps,
      observer: deps.observer ?? IGNORE,
      rateLimiter: deps.rateLimiter ?? new LocalRateLimiter(),
    };
  }

  /** Streams one model call through `route` (primary first, then fallbacks): the answering ref and a stream that starts with the first part that model sent. */
  stream(
    route: readonly ModelTarget[],
    call: LanguageModelV3CallOptions,
    context: ModelCallContext,
  ): Promise<{ ref: string; stream: ModelStream }> {
    try {
      if (route.length === 0) throw validationError('route', 'must list at least one model');
      call.abortSignal?.throwIfAborted();
      return this.#through(route, 0, call, context);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The call through `route[i]`, then the next model of the route when it fails in a way a
   * fallback may fix. No async frame on the way of a call its first model answers.
   */
  #through(
    route: readonly ModelTarget[],
    i: number,
    call: LanguageModelV3CallOptions,
    context: ModelCallContext,
  ): Promise<{ ref: string; stream: ModelStream }> {
    const target = route[i] as ModelTarget;
    const guard = this.#guard(target.ref);
    const signal = call.abortSignal;
    return guard.open(target.model, call, context.project).then(
      (stream) => {
        if (signal?.aborted !== true) return { ref: target.ref, stream };
        // The guard leaves at once when the caller aborts: this abort came with its answer.
        stream.cancel(signal.reason).catch(() => undefined);
        throw signal.reason;
      },
      (err: unknown) => {
        if (signal?.aborted === true) throw signal.reason;
        if (!isAgentPoolError(err)) throw err;
        err.details['attempted'] = route.slice(0, i + 1).map((t) => t.ref);
        const next = route[i + 1];
        if (!canFallBack(err) || next === undefined) throw err;
        guard.fallbacks++;
        const reason = { code: err.code, message: err.message };
        this.#deps.bus.emit({
          type: 'model.fallback',
          at: this.#deps.clock.now(),
          from: target.ref,
          to: next.ref,
          reason,
          ...context,
        });
        this.#deps.observer.fallback(target.ref, next.ref);
        return this.#through(route, i + 1, call, context);
      },
    );
  }

  /**
   * Reports a call whose provider said it used more than the call's cap (the caller charged the
   * cap): `model.usage_exceeded_cap` on the bus, and the metric.
   */
  usageExceededCap(report: ModelCallContext & UsageExceededCap): void {
    this.#deps.bus.emit({ type: 'model.usage_exceeded_cap', at: this.#deps.clock.now(), ...report });
    this.#deps.observer.usageExceededCap(report.model);
  }

  /** Breaker state etc. of every ref used so far (bounded: at most 10,000 refs kept; the least recently used beyond that are dropped). */
  stats(): ModelGuardStats[] {
    return [...this.#guards.values()].map((g) => g.stats());
  }

  #guard(ref: string): ModelGuard {
    let guard = this.#guards.get(ref);
    if (guard !== undefined) {
      if (ref === this.#newest) return guard;
      this.#guards.delete(ref);
    } else {
      guard = new ModelGuard(ref, this.options.policyFor(ref), this.#deps);
      if (this.#guards.size >= MAX_GUARDS) {
        this.#oldestGuard.evict();
      }
    }
    this.#guards.set(ref, guard);
    this.#newest = ref;
    return guard;
  }
}
