/**
 * What the model guards report: breaker states, the events they emit on the pool's bus, the
 * observer metrics listen through, and the statistics each guard keeps.
 */
/** The circuit of one model: `closed` lets calls through, `open` fails them fast, `half-open` lets one trial call through. */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * A provider reported more than a call was allowed: output tokens beyond the call's
 * `maxOutputTokens`, or a cost above the worst case reserved for it. The run was charged
 * `chargedUsd`, the cost at the cap, never more than the reservation.
 */
export interface UsageExceededCap {
  /** The model that answered. */
  model: string;
  /** The call's `maxOutputTokens`; null when it sent none (only its reservation capped it). */
  capTokens: number | null;
  reportedInputTokens: number;
  reportedOutputTokens: number;
  /** The price of the reported tokens. */
  reportedUsd: number;
  /** What the run and its budget were charged. */
  chargedUsd: number;
}

/** Events of the model layer. */
export type ModelEvent =
  | { type: 'breaker.opened'; at: number; model: string; reason: { code: string; message: string } }
  | { type: 'breaker.half_opened'; at: number; model: string }
  | { type: 'breaker.closed'; at: number; model: string }
  | {
      type: 'model.fallback';
      at: number;
      from: string;
      to: string;
      reason: { code: string; message: string };
      project: string;
      agent: string;
      runId: string;
    }
  | ({
      type: 'model.usage_exceeded_cap';
      at: number;
      project: string;
      agent: string;
      runId: string;
    } & UsageExceededCap);

/** Told of what the guards do, for metrics. */
export interface ModelObserver {
  /** An attempt failed and will be retried. */
  retried(model: string): void;
  /** A local provider limit refused an attempt (it is `rejected` too). */
  throttled(model: string, limit: 'requests' | 'tokens'): void;
  /** An attempt was refused without reaching the provider: MODEL_UNAVAILABLE, MODEL_BUSY or RATE_LIMITED. */
  rejected(model: string, code: string): void;
  breakerChanged(model: string, state: BreakerState): void;
  /** A call failed over from one model to the next of its route. */
  fallback(from: string, to: string): void;
  /** A provider reported more usage than the call's cap (see {@link UsageExceededCap}). */
  usageExceededCap(model: string): void;
}

/** What the guard of one ref has seen since it was created. */
export interface ModelGuardStats {
  model: string;
  breaker: BreakerState;
  /** Calls holding a bulkhead slot (streaming or being attempted). */
  inFlight: number;
  /** Calls waiting for a slot. */
  queued: number;
  /** Calls routed to this model. */
  calls: number;
  /** Calls that ended in an error on this model (after its retries; cancellations excluded). */
  failures: number;
  /** Attempts retried. */
  retries: number;
  /** Times this model failed over to the next. */
  fallbacks: number;
  /** Attempts refused by a local provider limit. */
  throttled: number;
  /** Attempts refused without reaching the provider (breaker, bulkhead, provider limits). */
  rejected: number;
}
